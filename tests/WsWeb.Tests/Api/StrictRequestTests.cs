using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// A query name an endpoint does not take, or a body sent to a bulk action that reads none, is a 400 naming it and
/// nothing is done: a typo in a script must not turn "clear what matches" into "clear everything".
/// </summary>
public sealed class StrictRequestTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAndDropHeldAsync();

    public Task DisposeAsync() => app.ResetAndDropHeldAsync();

    private async Task<string> FinishedFlowAsync()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done");
            await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        }

        return flow.Id;
    }

    [Fact]
    public async Task A_misspelt_query_name_is_a_400_naming_it_and_clears_nothing()
    {
        var id = await FinishedFlowAsync();

        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.DeleteAsync(new Uri("/api/flows?fliter=" + Uri.EscapeDataString("~u nothing-matches"), UriKind.Relative)), "fliter");
        Assert.Equal("fliter is not a query parameter of this endpoint, which takes filter. Nothing was done.", message);
        Assert.NotNull(app.Store.Get(id));

        Assert.Contains("takes filter, skip, limit", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/flows?unknown=1"), "unknown"), StringComparison.Ordinal);
        Assert.Contains("takes no query parameters", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{id}?verbose=1"), "verbose"), StringComparison.Ordinal);

        // Names are matched as binding matches them, without regard to case; what is taken still works.
        var page = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/flows?FILTER=~websocket&Limit=5"));
        Assert.Contains(page.GetProperty("flows").EnumerateArray(), f => f.GetProperty("id").GetString() == id);
    }

    [Fact]
    public async Task Head_answers_wherever_get_does_with_its_status_and_headers_and_no_body()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("héllo");
        await client.ReceiveTextAsync();

        using var list = await app.Api.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri("/api/flows", UriKind.Relative)));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Equal("application/json", list.Content.Headers.ContentType?.MediaType);
        Assert.Empty(await list.Content.ReadAsByteArrayAsync());

        using var content = await app.Api.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri($"/api/flows/{flow.Id}/messages/0/content", UriKind.Relative)));
        Assert.Equal(HttpStatusCode.OK, content.StatusCode);
        Assert.Equal(6, content.Content.Headers.ContentLength);
        Assert.Empty(await content.Content.ReadAsByteArrayAsync());

        using var missing = await app.Api.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri("/api/flows/nope", UriKind.Relative)));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        // HttpClient reads no body after a HEAD whatever comes: on the wire, a GET pipelined behind the HEAD is answered
        // right after the HEAD's head, with no JSON between them.
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, app.WebPort);
        var stream = tcp.GetStream();
        var host = $"127.0.0.1:{app.WebPort}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HEAD /api/flows HTTP/1.1\r\nHost: {host}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var wire = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var second = wire.IndexOf("\r\n\r\nHTTP/1.1 200", StringComparison.Ordinal);
        Assert.True(second > 0, wire);
        Assert.StartsWith("HTTP/1.1 200", wire, StringComparison.Ordinal);
        Assert.DoesNotContain("\"flows\":[", wire, StringComparison.Ordinal);
        Assert.Contains("\"status\":\"ok\"", wire[second..], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_filter_sent_in_a_body_to_a_bulk_action_is_a_400_naming_the_body_and_nothing_is_removed_or_decided()
    {
        var id = await FinishedFlowAsync();
        using (var clear = new HttpRequestMessage(HttpMethod.Delete, new Uri("/api/flows", UriKind.Relative)) { Content = JsonContent.Create(new { filter = "~u nothing-matches" }) })
        {
            Assert.Contains("?filter=", await ApiAssert.InvalidFieldAsync(await app.Api.SendAsync(clear), "body"), StringComparison.Ordinal);
        }

        Assert.NotNull(app.Store.Get(id));

        var held = await app.HoldOnePerFlowAsync("~wq & ~b hold", ["a"], name => [$"hold {name}"]);
        await using var client = held[0].Client;
        foreach (var action in new[] { "drop", "release" })
        {
            await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{action}", new { filter = "~b nothing-matches" }), "body");
        }

        var stillHeld = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"));
        Assert.Equal(held[0].FlowId, stillHeld[0].GetProperty("flowId").GetString());
        Assert.Empty(held[0].Server.Received);

        // Without a body (as the dashboard sends them) they act.
        Assert.Equal(1, (await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri("/api/intercept/held/drop", UriKind.Relative), null))).GetProperty("dropped").GetInt32());
        Assert.Equal(HttpStatusCode.OK, (await app.Api.DeleteAsync(new Uri("/api/flows?filter=" + Uri.EscapeDataString("~u nothing-matches"), UriKind.Relative))).StatusCode);
    }
}
