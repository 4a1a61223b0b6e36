using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
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

        // What a user sees: the API marks it imported and not live, and ~imported / ~live tell it from captured flows.
        var summary = await ApiAssert.JsonAsync(await other.Api.GetAsync($"/api/flows/{importedId}"));
        Assert.True(summary.GetProperty("summary").GetProperty("imported").GetBoolean());
        Assert.False(summary.GetProperty("summary").GetProperty("isLive").GetBoolean());
        Assert.False((await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{id}"))).GetProperty("summary").GetProperty("imported").GetBoolean());
        Assert.Equal([importedId], await FlowIdsAsync(other, "~imported"));
        Assert.Empty(await FlowIdsAsync(other, "~live"));
        Assert.DoesNotContain(id, await FlowIdsAsync(app, "~imported"));

        // Imported flows are not live: inject and close answer 409, saying why.
        var inject = await ApiAssert.ProblemAsync(await other.Api.PostJsonAsync($"/api/flows/{importedId}/messages", new { toClient = true, type = "text", content = "x" }), HttpStatusCode.Conflict);
        var close = await ApiAssert.ProblemAsync(await other.Api.PostJsonAsync($"/api/flows/{importedId}/close", new { target = "both", code = 1000 }), HttpStatusCode.Conflict);
        Assert.Equal($"Flow {importedId} was imported from a file; it has no connection to act on.", inject.GetProperty("detail").GetString());
        Assert.Equal(inject.GetProperty("detail").GetString(), close.GetProperty("detail").GetString());

        // The dashboard's list row and flow header say so too.
        var rows = await other.Api.GetStringAsync($"/ui/flows/rows?filter={Uri.EscapeDataString("~imported")}");
        Assert.Contains(">imported</span>", rows, StringComparison.Ordinal);
        Assert.Contains("id=\"flow-imported\"", await other.Api.GetStringAsync($"/ui/flows/{importedId}/header"), StringComparison.Ordinal);
        Assert.DoesNotContain(">imported</span>", await app.Api.GetStringAsync($"/ui/flows/{id}/header"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json")]
    [InlineData("har")]
    [InlineData("mitmproxy")]
    public async Task MessagesAnImportTrimsPastMaxMessagesPerFlowAreAWarning(string format)
    {
        // 10 messages, exported from an instance that kept them all, into one that keeps 4 a flow.
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            for (var i = 0; i < 5; i++)
            {
                await client.SendTextAsync($"m{i}");
                await client.ReceiveTextAsync();
            }

            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        var file = await app.Api.GetByteArrayAsync(new Uri($"/api/flows/{flow.Id}/export?format={format}", UriKind.Relative));

        await using var small = new WsWebApp(options => options with { MaxMessagesPerFlow = 4 });
        await small.InitializeAsync();
        using var content = new ByteArrayContent(file);
        var report = await ApiAssert.JsonAsync(await small.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), HttpStatusCode.Created);

        var id = report.GetProperty("flowIds")[0].GetString()!;
        Assert.Equal(4, report.GetProperty("messages").GetInt32());
        var warning = Assert.Single(report.GetProperty("warnings").EnumerateArray()).GetString();
        Assert.Equal(
            $"Flow {id} keeps the newest 4 of its 10 messages in the file: the oldest 6 were trimmed to stay within --max-messages-per-flow (4 messages), as in a capture (its trimmedMessages counts them).",
            warning);
        var imported = await ApiAssert.JsonAsync(await small.Api.GetAsync($"/api/flows/{id}"));
        Assert.Equal(6, imported.GetProperty("webSocket").GetProperty("trimmedMessages").GetInt64());
    }

    private static async Task<string[]> FlowIdsAsync(WsWebApp on, string filter) =>
        [.. (await ApiAssert.JsonAsync(await on.Api.GetAsync($"/api/flows?filter={Uri.EscapeDataString(filter)}"))).GetProperty("flows").EnumerateArray().Select(f => f.GetProperty("id").GetString()!)];

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

        // Messages of a flow that was already present were not imported, so they are not counted.
        Assert.Equal(0, report.GetProperty("messages").GetInt32());
        Assert.Empty(report.GetProperty("flowIds").EnumerateArray());
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

    /// <summary>A WsWeb JSON file with one flow; the arguments are raw JSON for its id and its webSocket member.</summary>
    internal static string OneFlowJson(string idJson, string webSocketJson) =>
        $$"""{"format":"wsweb-flows","version":1,"flows":[{{FlowJson(idJson, webSocketJson)}}]}""";

    /// <summary>One WebSocket flow of our JSON format, for a file of one flow or of several.</summary>
    internal static string FlowJson(string idJson, string webSocketJson) =>
        $$"""{"id":{{idJson}},"request":{"method":"GET","scheme":"http","host":"import.test","port":80,"path":"/","timestampStart":1},"response":{"statusCode":101,"timestampStart":1},"webSocket":{{webSocketJson}}}""";

    internal static string Messages(params string[] texts) =>
        "[" + string.Join(",", texts.Select((t, i) => $$"""{"fromClient":{{(i % 2 == 0 ? "true" : "false")}},"type":"text","content":{{JsonSerializer.Serialize(t)}},"timestamp":1}""")) + "]";

    internal static string NewIdJson() => JsonSerializer.Serialize(Guid.NewGuid().ToString());

    private async Task<HttpResponseMessage> ImportAsync(string body, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.Remove("Content-Type");
        Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));
        return await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content);
    }

    [Fact]
    public async Task ImportReadsAFormUrlEncodedBodyAsTheRawFileAsCurlDataBinarySendsIt()
    {
        // curl --data-binary @file sends Content-Type application/x-www-form-urlencoded.
        var small = await ApiAssert.JsonAsync(await ImportAsync(OneFlowJson(NewIdJson(), $$"""{"messages":{{Messages("a", "b")}}}"""), "application/x-www-form-urlencoded"), HttpStatusCode.Created);
        Assert.Equal(1, small.GetProperty("flows").GetInt32());
        Assert.Equal(2, small.GetProperty("messages").GetInt32());

        // Past the form reader's 4 MiB value limit, which made this a 500.
        var large = await ApiAssert.JsonAsync(await ImportAsync(OneFlowJson(NewIdJson(), $$"""{"messages":{{Messages(new string('x', 5 * 1024 * 1024))}}}"""), "application/x-www-form-urlencoded"), HttpStatusCode.Created);
        Assert.Equal(1, large.GetProperty("flows").GetInt32());
        var id = large.GetProperty("flowIds")[0].GetString()!;
        Assert.Equal(5 * 1024 * 1024, app.Store.Get(id)!.WebSocket!.Messages[0].Content.Length);
    }

    [Fact]
    public async Task ImportReadsABodyOfUnknownLengthSentChunked()
    {
        var json = Encoding.UTF8.GetBytes(OneFlowJson(NewIdJson(), $$"""{"messages":{{Messages("a", "b", "c")}}}"""));
        using var content = new StreamContent(new UnknownLengthStream(json));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var report = await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), HttpStatusCode.Created);

        Assert.Equal(3, report.GetProperty("messages").GetInt32());
    }

    /// <summary>A body HttpClient cannot size, so it goes chunked, without Content-Length.</summary>
    private sealed class UnknownLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    [Theory]
    [InlineData("multipart/form-data", "abc")]
    [InlineData("multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nabc")]
    [InlineData("multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mitm\"\r\n\r\n5:hello,")]
    [InlineData("multipart/form-data; boundary=XX", "--XX\r\nno header end")]
    [InlineData("multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mitm\"\r\n\r\nabc\r\n--X")]
    public async Task AMalformedMultipartUploadIsA400NamingFile(string contentType, string body)
    {
        var message = await ApiAssert.InvalidFieldAsync(await ImportAsync(body, contentType), "file");
        Assert.Contains("multipart", message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mitm\"\r\n\r\n5:hello,")]
    [InlineData("--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mitm\"\r\n\r\n5:hello,\r\n")]
    public async Task AMultipartUploadWithoutItsClosingBoundarySaysTheBodyEndsEarly(string body)
    {
        var message = await ApiAssert.InvalidFieldAsync(await ImportAsync(body, "multipart/form-data; boundary=XX"), "file");

        Assert.Equal("The multipart/form-data body ends before its closing boundary (--XX--): the upload is incomplete.", message);
    }

    [Theory]
    [InlineData("\"export\"")]
    [InlineData("\"IMPORT\"")]
    [InlineData("\"a/b\"")]
    [InlineData("\"\"")]
    [InlineData("\"..\"")]
    [InlineData("\"a b\"")]
    [InlineData("\"caf\u00e9\"")]
    [InlineData("\"a%2Fb\"")]
    public async Task ImportRefusesFlowIdsTheRoutesCannotAddress(string idJson)
    {
        var message = await ApiAssert.InvalidFieldAsync(await ImportAsync(OneFlowJson(idJson, "null")), "body");
        Assert.StartsWith("$.flows[0].id: ", message, StringComparison.Ordinal);
        Assert.Null(app.Store.Get(JsonSerializer.Deserialize<string>(idJson)!));
    }

    [Fact]
    public async Task ImportKeepsAnUrlSafeIdAndTheRoutesReachIt()
    {
        const string id = "Capture-1.a_b~c";
        var report = await ApiAssert.JsonAsync(await ImportAsync(OneFlowJson($"\"{id}\"", $$"""{"messages":{{Messages("m")}}}""")), HttpStatusCode.Created);
        Assert.Equal(id, report.GetProperty("flowIds")[0].GetString());

        Assert.Equal(id, (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{id}"))).GetProperty("summary").GetProperty("id").GetString());
        Assert.Equal("m", (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{id}/messages"))).GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("""{"trimmedCount":9223372036854775807,"messages":[]}""", "$.flows[0].webSocket.trimmedCount: ")]
    [InlineData("""{"trimmedCount":9007199254740992,"messages":[]}""", "$.flows[0].webSocket.trimmedCount: ")]
    [InlineData("""{"trimmedCount":-1,"messages":[]}""", "$.flows[0].webSocket.trimmedCount: ")]
    [InlineData("""{"messages":[{"index":9223372036854775807,"fromClient":true,"type":"text","content":"a","timestamp":1}]}""", "$.flows[0].webSocket.messages[0].index: ")]
    [InlineData("""{"closeCode":70000,"messages":[]}""", "$.flows[0].webSocket.closeCode: ")]
    [InlineData("""{"closeCode":-1,"messages":[]}""", "$.flows[0].webSocket.closeCode: ")]
    public async Task ImportRefusesIndicesPastJavaScriptsSafeIntegerAndCloseCodesPastTwoBytes(string webSocketJson, string expected)
    {
        var message = await ApiAssert.InvalidFieldAsync(await ImportAsync(OneFlowJson(NewIdJson(), webSocketJson)), "body");
        Assert.StartsWith(expected, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImportRefusesATrimmedCountWhoseMessagesRunPastTheLargestIndex()
    {
        // 2^53-2 trimmed, then two messages: the second would be 2^53, which a JavaScript number cannot tell from 2^53+1.
        var refused = await ApiAssert.InvalidFieldAsync(await ImportAsync(OneFlowJson(NewIdJson(), $$"""{"trimmedCount":9007199254740990,"messages":{{Messages("a", "b")}}}""")), "body");
        Assert.StartsWith("$.flows[0].webSocket.trimmedCount: ", refused, StringComparison.Ordinal);
        Assert.Contains("9007199254740991", refused, StringComparison.Ordinal);

        // One less fits: the indices are exactly the ones exported, up to 2^53-2, and paging past the last is empty.
        var report = await ApiAssert.JsonAsync(await ImportAsync(OneFlowJson(NewIdJson(), $$"""{"trimmedCount":9007199254740989,"closeCode":1000,"messages":{{Messages("a", "b")}}}""")), HttpStatusCode.Created);
        var id = report.GetProperty("flowIds")[0].GetString();
        var page = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{id}/messages"));
        Assert.Equal([9007199254740989L, 9007199254740990L], page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("index").GetInt64()));
        Assert.Equal(9007199254740990L, page.GetProperty("next").GetInt64());
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{id}/messages?after=9007199254740990"))).GetProperty("messages").EnumerateArray());
    }
}

/// <summary>A host with small bounds, to see imports kept under them as captures are.</summary>
public sealed class SmallStoreWsWebApp : IAsyncLifetime
{
    internal WsWebApp App { get; } = new(options => options with { MaxFlows = 3, MaxMessagesPerFlow = 4, MaxTotalBytes = 1024 * 1024 });

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

public sealed class BoundedImportTests(SmallStoreWsWebApp host) : IClassFixture<SmallStoreWsWebApp>
{
    private async Task<JsonElement> ImportAsync(string flowsJson)
    {
        using var content = new StringContent($$"""{"format":"wsweb-flows","version":1,"flows":[{{flowsJson}}]}""", Encoding.UTF8, "application/json");
        return await ApiAssert.JsonAsync(await host.App.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), HttpStatusCode.Created);
    }

    private static string Flow(params string[] messages) =>
        ExportApiTests.FlowJson(ExportApiTests.NewIdJson(), $$"""{"messages":{{ExportApiTests.Messages(messages)}}}""");

    [Fact]
    public async Task An_imported_flow_keeps_only_the_newest_messages_as_a_captured_one_does()
    {
        var report = await ImportAsync(Flow([.. Enumerable.Range(0, 10).Select(i => $"m{i}")]));

        var flow = host.App.Store.Get(report.GetProperty("flowIds")[0].GetString()!)!;
        Assert.Equal(["m6", "m7", "m8", "m9"], flow.WebSocket!.Messages.Select(m => m.Text));
        Assert.Equal(6, flow.WebSocket.TrimmedCount);
        Assert.Equal(6, flow.WebSocket.Messages[0].Index);
        Assert.Equal(4, report.GetProperty("messages").GetInt32());
        Assert.Equal(
            [$"Flow {flow.Id} keeps the newest 4 of its 10 messages in the file: the oldest 6 were trimmed to stay within --max-messages-per-flow (4 messages), as in a capture (its trimmedMessages counts them)."],
            TrimWarnings(report));
    }

    /// <summary>The report's warnings about trimmed messages; this small store also evicts the other tests' flows, and says so.</summary>
    private static List<string> TrimWarnings(JsonElement report) =>
        [.. report.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!).Where(w => w.Contains("trimmed", StringComparison.Ordinal))];

    [Fact]
    public async Task Messages_trimmed_before_the_file_was_written_are_not_the_imports_to_report()
    {
        // A capture that had lost 100 messages: the file says so, and what it holds fits.
        var fits = await ImportAsync(ExportApiTests.FlowJson(ExportApiTests.NewIdJson(), $$"""{"trimmedCount":100,"messages":{{ExportApiTests.Messages("a", "b", "c")}}}"""));
        Assert.Empty(TrimWarnings(fits));
        Assert.Equal(100, host.App.Store.Get(fits.GetProperty("flowIds")[0].GetString()!)!.WebSocket!.TrimmedCount);

        // What it holds does not fit: the warning counts what the import trimmed, of what the file held.
        var texts = Enumerable.Range(0, 10).Select(i => $"m{i}").ToArray();
        var over = await ImportAsync(ExportApiTests.FlowJson(ExportApiTests.NewIdJson(), $$"""{"trimmedCount":100,"messages":{{ExportApiTests.Messages(texts)}}}"""));
        var id = over.GetProperty("flowIds")[0].GetString()!;
        Assert.StartsWith($"Flow {id} keeps the newest 4 of its 10 messages in the file: the oldest 6 were trimmed", Assert.Single(TrimWarnings(over)), StringComparison.Ordinal);
        Assert.Equal(106, host.App.Store.Get(id)!.WebSocket!.TrimmedCount);
    }

    [Fact]
    public async Task Flows_past_the_stores_bounds_are_evicted_and_the_report_says_so()
    {
        var report = await ImportAsync(string.Join(",", Enumerable.Range(0, 5).Select(i => Flow($"flow {i}"))));

        Assert.Equal(3, report.GetProperty("flows").GetInt32());
        var ids = report.GetProperty("flowIds").EnumerateArray().Select(id => id.GetString()!).ToList();
        Assert.Equal(3, ids.Count);
        Assert.All(ids, id => Assert.NotNull(host.App.Store.Get(id)));
        Assert.Contains(report.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("2 of the 5 imported flows", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Imported_content_counts_against_the_memory_budget()
    {
        var big = new string('x', 400 * 1024);
        for (var i = 0; i < 4; i++)
        {
            await ImportAsync(Flow(big));
        }

        Assert.True(host.App.Store.RetainedBytes <= 1024 * 1024, $"{host.App.Store.RetainedBytes} bytes retained, over the 1 MiB budget");
    }
}
