using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// An import makes room under --max-flows as a capture does, by evicting the oldest finished flows; the report
/// must say which flows that were already there it pushed out, and a live flow is never one of them.
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
