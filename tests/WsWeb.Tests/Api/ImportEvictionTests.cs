using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// An import makes room under --max-flows as a capture does, by evicting the oldest finished flows; the report
/// must say which flows that were already there it pushed out, and a live flow is never one of them. It trims a flow's
/// oldest messages under the per-flow bounds as a capture does too, and the report says that as well.
/// </summary>
public sealed class ImportEvictionTests
{
    /// <summary>A HAR file of <paramref name="count"/> plain GET entries, as a browser writes them.</summary>
    private static string Har(int count) =>
        """{"log":{"version":"1.2","creator":{"name":"test","version":"1"},"entries":["""
        + string.Join(",", Enumerable.Range(0, count).Select(Entry))
        + "]}}";

    private static string Entry(int i) =>
        $$$"""{"startedDateTime":"2024-01-01T12:00:0{{{i}}}.000Z","time":1,"request":{"method":"GET","url":"http://import.test/{{{i}}}","httpVersion":"HTTP/1.1","headers":[]},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"content":{"size":0,"mimeType":""}},"timings":{"send":0,"wait":1,"receive":0}}""";

    private static async Task<JsonElement> ImportAsync(WsWebApp app, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        return await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), content), HttpStatusCode.Created);
    }

    private static async Task<string> CaptureFinishedAsync(WsWebApp app)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("hello");
            await client.ReceiveTextAsync();
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        return flow.Id;
    }

    [Fact]
    public async Task The_report_names_the_captured_flows_an_import_evicted_and_live_ones_stay()
    {
        await using var app = new WsWebApp(options => options with { MaxFlows = 5 });
        await app.InitializeAsync();
        var (live, _, liveFlow) = await app.ConnectAsync();
        await using var liveScope = live;
        var first = await CaptureFinishedAsync(app);
        var second = await CaptureFinishedAsync(app);

        // 3 stored + 4 imported = 7: two must go, and the live flow, though the oldest, is not one of them.
        var report = await ImportAsync(app, Har(4));

        Assert.Equal(4, report.GetProperty("flows").GetInt32());
        Assert.NotNull(app.Store.Get(liveFlow.Id));
        Assert.True(liveFlow.IsLive);
        Assert.Null(app.Store.Get(first));
        Assert.Null(app.Store.Get(second));
        var warning = Assert.Single(report.GetProperty("warnings").EnumerateArray()).GetString()!;
        Assert.StartsWith("2 flows that were already in the store (captured or imported before) were evicted to make room", warning, StringComparison.Ordinal);
        Assert.EndsWith($"oldest finished first: {first}, {second}.", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_flows_trimmed_on_import_make_one_warning_naming_the_first_20()
    {
        await using var app = new WsWebApp(options => options with { MaxMessagesPerFlow = 2 });
        await app.InitializeAsync();
        var ids = Enumerable.Range(0, 25).Select(_ => Guid.NewGuid().ToString()).ToList();
        var flows = ids.Select(id => ExportApiTests.FlowJson(JsonSerializer.Serialize(id), $$"""{"messages":{{ExportApiTests.Messages("a", "b", "c")}}}"""));

        var report = await ImportAsync(app, $$"""{"format":"wsweb-flows","version":1,"flows":[{{string.Join(",", flows)}}]}""");

        Assert.Equal(25, report.GetProperty("flows").GetInt32());
        Assert.Equal(50, report.GetProperty("messages").GetInt32());
        var warning = Assert.Single(report.GetProperty("warnings").EnumerateArray()).GetString()!;
        Assert.Equal(
            "25 imported flows keep only their newest messages: 25 of the file's messages were trimmed, the oldest of each flow, to stay within --max-messages-per-flow (2 messages), "
            + $"as in a capture (each flow's trimmedMessages counts its own): {string.Join(", ", ids.Take(20).Select(id => $"{id} (1 of 3)"))} and 5 more.",
            warning);
    }

    [Fact]
    public async Task Messages_an_import_trims_for_the_content_bound_are_a_warning_that_says_so()
    {
        await using var app = new WsWebApp(options => options with { MaxBytesPerFlow = 400 });
        await app.InitializeAsync();
        var forty = new string('x', 40);

        // Each message counts 40 + 128 bytes: 168, 336, then 504, so each past the second takes the oldest out, down to
        // 360 bytes or less.
        var report = await ImportAsync(app, ExportApiTests.OneFlowJson(ExportApiTests.NewIdJson(), $$"""{"messages":{{ExportApiTests.Messages(forty, forty, forty, forty, forty)}}}"""));

        var id = report.GetProperty("flowIds")[0].GetString()!;
        Assert.Equal(2, app.Store.Get(id)!.WebSocket!.Messages.Count);
        Assert.Equal(
            [$"Flow {id} keeps the newest 2 of its 5 messages in the file: the oldest 3 were trimmed to stay within the 400 bytes of messages a flow keeps (content, and 128 bytes a message), as in a capture (its trimmedMessages counts them)."],
            report.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
    }

    [Fact]
    public async Task An_import_into_a_store_full_of_live_flows_evicts_none_of_them()
    {
        await using var app = new WsWebApp(options => options with { MaxFlows = 2 });
        await app.InitializeAsync();
        var (a, _, flowA) = await app.ConnectAsync();
        await using var scopeA = a;
        var (b, _, flowB) = await app.ConnectAsync();
        await using var scopeB = b;

        var report = await ImportAsync(app, Har(3));

        Assert.Same(flowA, app.Store.Get(flowA.Id));
        Assert.Same(flowB, app.Store.Get(flowB.Id));
        Assert.Equal(0, report.GetProperty("flows").GetInt32());
        var warning = Assert.Single(report.GetProperty("warnings").EnumerateArray()).GetString()!;
        Assert.StartsWith("3 of the 3 flows in the file were not imported: the store is full (2 flows) of live flows", warning, StringComparison.Ordinal);

        // The live flows still relay.
        await a.SendTextAsync("still here");
        Assert.Equal("still here", await a.ReceiveTextAsync());
    }
}
