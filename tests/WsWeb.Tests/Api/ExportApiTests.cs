using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>Export a real capture in each format and import it into a second, real instance.</summary>
public sealed class ExportApiTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    private async Task<string> CaptureAsync()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("hello ✓");
            await client.ReceiveTextAsync();
            await client.SendBinaryAsync([0, 0xff, 0x80, 1]);
            await client.ReceiveAsync();
            await client.CloseAsync((WebSocketCloseStatus)4001, "bye");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        return flow.Id;
    }

    [Theory]
    [InlineData("json", "application/json", ".json")]
    [InlineData("har", "application/json", ".har")]
    [InlineData("mitmproxy", "application/octet-stream", ".mitm")]
    public async Task ExportedFlowImportsIntoAnotherInstanceWithEveryMessageAndTheClose(string format, string contentType, string extension)
    {
        var id = await CaptureAsync();

        using var exported = await app.Api.GetAsync($"/api/flows/{id}/export?format={format}");
        Assert.Equal(HttpStatusCode.OK, exported.StatusCode);
        Assert.Equal(contentType, exported.Content.Headers.ContentType?.MediaType);
        Assert.Equal($"wsweb-flow-{id}{extension}", exported.Content.Headers.ContentDisposition?.FileNameStar ?? exported.Content.Headers.ContentDisposition?.FileName);
        var file = await exported.Content.ReadAsByteArrayAsync();

        await using var other = new WsWebApp();
        await other.InitializeAsync();
        using var content = new ByteArrayContent(file);
        var report = await ApiAssert.JsonAsync(await other.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), HttpStatusCode.Created);
        Assert.Equal(format, report.GetProperty("format").GetString());
        Assert.Equal(1, report.GetProperty("flows").GetInt32());
        Assert.Equal(4, report.GetProperty("messages").GetInt32());

        var importedId = report.GetProperty("flowIds")[0].GetString()!;
        var original = app.Store.Get(id)!;
        var imported = other.Store.Get(importedId)!;
        Assert.True(imported.IsImported);
        Assert.False(imported.IsLive);
        Assert.Equal(original.Request.Url, imported.Request.Url);
        Assert.Equal(original.WebSocket!.Messages.Select(m => (m.FromClient, m.Type, Convert.ToHexString(m.Content))), imported.WebSocket!.Messages.Select(m => (m.FromClient, m.Type, Convert.ToHexString(m.Content))));
        Assert.Equal(original.WebSocket.Messages.Select(m => Math.Round(m.Timestamp, 3)), imported.WebSocket.Messages.Select(m => Math.Round(m.Timestamp, 3)));
        Assert.Equal(4001, imported.WebSocket.CloseCode);
        Assert.Equal("bye", imported.WebSocket.CloseReason);
        Assert.True(imported.WebSocket.ClosedByClient);

        // Imported flows are not live: inject and close answer 409.
        await ApiAssert.ProblemAsync(await other.Api.PostJsonAsync($"/api/flows/{importedId}/messages", new { toClient = true, type = "text", content = "x" }), HttpStatusCode.Conflict);
        await ApiAssert.ProblemAsync(await other.Api.PostJsonAsync($"/api/flows/{importedId}/close", new { target = "both", code = 1000 }), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task ExportAllHonoursTheFilterAndReimportIsIdempotent()
    {
        var id = await CaptureAsync();

        using var all = await app.Api.GetAsync("/api/flows/export?format=json&filter=~websocket");
        var json = JsonDocument.Parse(await all.Content.ReadAsStringAsync());
        Assert.Contains(json.RootElement.GetProperty("flows").EnumerateArray(), f => f.GetProperty("id").GetString() == id);
        using var none = await app.Api.GetAsync("/api/flows/export?format=json&filter=~d%20no-such-host.invalid");
        Assert.Empty(JsonDocument.Parse(await none.Content.ReadAsStringAsync()).RootElement.GetProperty("flows").EnumerateArray());

        // The same flows again: nothing is duplicated.
        using var again = new ByteArrayContent(await (await app.Api.GetAsync($"/api/flows/{id}/export?format=mitmproxy")).Content.ReadAsByteArrayAsync());
        var report = await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), again), HttpStatusCode.Created);
        Assert.Equal(0, report.GetProperty("flows").GetInt32());
        Assert.Equal(1, report.GetProperty("alreadyPresent").GetInt32());
    }

    [Fact]
    public async Task ImportAcceptsAMultipartUpload()
    {
        var id = await CaptureAsync();
        var har = await (await app.Api.GetAsync($"/api/flows/{id}/export?format=har")).Content.ReadAsByteArrayAsync();
        await using var other = new WsWebApp();
        await other.InitializeAsync();

        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(har);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        form.Add(file, "file", "capture.har");
        var report = await ApiAssert.JsonAsync(await other.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), form), HttpStatusCode.Created);

        Assert.Equal("har", report.GetProperty("format").GetString());
        Assert.Equal(1, report.GetProperty("flows").GetInt32());
    }

    [Theory]
    [InlineData("not a capture at all", "unrecognised input")]
    [InlineData("99999999999:x", "tnetstring")]
    [InlineData("5:abc", "byte")]
    [InlineData("{\"version\": 1}", "neither")]
    [InlineData("{\"log\": {\"version\": \"1.2\"}}", "entries")]
    public async Task BadImportsAreProblemsThatSayWhatAndWhere(string body, string expected)
    {
        using var content = new StringContent(body);
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), "body");

        Assert.Contains(expected, message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BadParametersNameTheField()
    {
        Assert.Contains("not a format", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/flows/export?format=pcap"), "format"), StringComparison.Ordinal);
        Assert.Contains("position", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/flows/export?filter=~zz"), "filter"), StringComparison.Ordinal);
        await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/no-such-flow/export"), HttpStatusCode.NotFound);
    }
}
