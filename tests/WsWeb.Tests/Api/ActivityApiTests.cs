using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using WsWeb.Api;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary><c>GET /api/flows/{id}/activity</c>: a flow's messages counted into equal time slices (the flow page's strip).</summary>
public sealed class ActivityApiTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    private static long Sum(JsonElement activity, string field) =>
        activity.GetProperty("slices").EnumerateArray().Sum(s => s.GetProperty(field).GetInt64());

    [Fact]
    public async Task Counts_a_live_flows_messages_each_way_with_drops_and_injections_and_a_filter()
    {
        using var rule = await app.Api.PostJsonAsync("/api/rules", new { name = "no noise", filter = "~wq & ~b noise", action = "drop" });
        Assert.Equal(HttpStatusCode.Created, rule.StatusCode);
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        foreach (var text in new[] { "one", "two", "three" })
        {
            await client.SendTextAsync(text);
            Assert.Equal(text, await client.ReceiveTextAsync());
        }

        await client.SendBinaryAsync(new byte[1000]);
        await client.ReceiveAsync();
        await client.SendTextAsync("noise");
        using (var injected = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = true, type = "text", content = "from wsweb", encoding = "utf8" }))
        {
            Assert.Equal(HttpStatusCode.Created, injected.StatusCode);
        }

        Assert.Equal("from wsweb", await client.ReceiveTextAsync());
        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 10, "4 echoed, 1 dropped and 1 injected message recorded");
        Assert.Equal(["one", "two", "three"], server.Texts);

        var activity = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?slices=7"));
        var slices = activity.GetProperty("slices").EnumerateArray().ToList();
        Assert.Equal(7, slices.Count);
        Assert.Equal(10, activity.GetProperty("messages").GetInt64());
        Assert.Equal(0, activity.GetProperty("trimmed").GetInt64());
        Assert.Equal(5, Sum(activity, "messagesFromClient"));
        Assert.Equal(5, Sum(activity, "messagesFromServer"));
        Assert.Equal(3 + 3 + 5 + 1000 + 5, Sum(activity, "bytesFromClient"));
        Assert.Equal(3 + 3 + 5 + 1000 + 10, Sum(activity, "bytesFromServer"));
        Assert.Equal(1, Sum(activity, "dropped"));
        Assert.Equal(1, Sum(activity, "injected"));

        // The slices cover the flow's life from its start to now, in order; the first message is the first slice's with one.
        var start = activity.GetProperty("start").GetDouble();
        var end = activity.GetProperty("end").GetDouble();
        Assert.Equal(flow.TimestampCreated, start, 6);
        Assert.True(end >= flow.WebSocket!.Messages[^1].Timestamp, "a live flow's slices reach now");
        Assert.Equal((end - start) / 7, activity.GetProperty("sliceSeconds").GetDouble(), 9);
        var firsts = slices.Select(s => s.GetProperty("firstIndex")).Where(f => f.ValueKind != JsonValueKind.Null).Select(f => f.GetInt64()).ToList();
        Assert.Equal(0, firsts[0]);
        Assert.Equal(firsts.Order(), firsts);

        // A filter counts only what it matches: here the client's messages with "e" in them (one, three, noise).
        var filtered = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?filter=" + Uri.EscapeDataString("~wq & ~b e")));
        Assert.Equal(100, filtered.GetProperty("slices").GetArrayLength());
        Assert.Equal(3, filtered.GetProperty("messages").GetInt64());
        Assert.Equal(3, Sum(filtered, "messagesFromClient"));
        Assert.Equal(0, Sum(filtered, "messagesFromServer"));
        Assert.Equal(1, Sum(filtered, "dropped"));
    }

    [Fact]
    public async Task Bad_input_is_a_problem_naming_the_field()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?slices=0"), "slices");
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?slices=1001"), "slices");
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?slices=many"), "slices");
        Assert.Equal("unknown operator '~zz' at position 0",
            await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?filter=~zz"), "filter"));
        await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/nope/activity"), HttpStatusCode.NotFound);

        // A plain HTTP exchange has no messages to count.
        using var proxied = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(app.ProxyUri), UseProxy = true });
        var tag = Guid.NewGuid().ToString("N");
        using (var response = await proxied.GetAsync(new Uri($"http://127.0.0.1:{app.Echo.Port}/plain?{tag}")))
        {
            await response.Content.ReadAsByteArrayAsync();
        }

        HttpFlow? plain = null;
        await Eventually.AssertAsync(() => (plain = app.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal), take: 1).FirstOrDefault()) is not null, "the exchange is recorded");
        await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{plain!.Id}/activity"), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_closed_flow_ends_at_its_close()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("last words");
            await client.ReceiveTextAsync();
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
            await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        }

        var activity = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/activity?slices=1"));
        Assert.Equal(flow.WebSocket!.TimestampEnd!.Value, activity.GetProperty("end").GetDouble(), 6);
        var only = activity.GetProperty("slices")[0];
        Assert.Equal(1, only.GetProperty("messagesFromClient").GetInt64());
        Assert.Equal(10, only.GetProperty("bytesFromServer").GetInt64());
        Assert.Equal(0, only.GetProperty("firstIndex").GetInt64());
    }

    /// <summary>Which slice a message lands in, on recorded timestamps: the edges, retention, an edit and clocks that disagree.</summary>
    [Fact]
    public void Slices_by_timestamp_from_the_start_or_the_oldest_retained_message_to_the_close()
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "example.com", Port = 80, Path = "/" }, 100);
        var ws = new WebSocketData(maxMessages: 4);
        flow.WebSocket = ws;
        ws.Add(new WebSocketMessage(Opcode.Text, true, "a"u8.ToArray(), 100.5));
        ws.Add(new WebSocketMessage(Opcode.Text, false, "bb"u8.ToArray(), 101.0));
        ws.Add(new WebSocketMessage(Opcode.Text, true, "ccc"u8.ToArray(), 101.99, dropped: true));
        var edited = new WebSocketMessage(Opcode.Text, false, "dddd"u8.ToArray(), 103.0, injected: true);
        edited.Text = "an edit that is longer";
        ws.Add(edited);
        ws.Add(new WebSocketMessage(Opcode.Binary, true, new byte[5], 99.0)); // stamped before the start: the first slice
        ws.TryClose(closedByClient: true, 1000, null, 104);

        // 4 kept, "a" trimmed: the slices start at "bb" (101) and end at the close (104), one second each.
        var activity = MessageActivity.Measure(flow, ws, filter: null, sliceCount: 3, now: 999, CancellationToken.None);
        Assert.Equal((101.0, 104.0, 1.0, 4L, 1L), (activity.Start, activity.End, activity.SliceSeconds, activity.Messages, activity.Trimmed));
        Assert.Equal(
            [
                new ActivitySlice(2, 3 + 5, 1, 2, 1, 0, 1), // "bb", "ccc" (dropped) and the early binary
                new ActivitySlice(0, 0, 0, 0, 0, 0, null),
                new ActivitySlice(0, 0, 1, 4, 0, 1, 3), // at 103: the last slice; its bytes as recorded, not as edited
            ],
            activity.Slices);

        Assert.True(FlowFilter.TryParse("~ws", out var fromServer, out _));
        var filtered = MessageActivity.Measure(flow, ws, fromServer, sliceCount: 3, now: 999, CancellationToken.None);
        Assert.Equal(2, filtered.Messages);
        Assert.Equal([1L, 0L, 1L], filtered.Slices.Select(s => s.MessagesFromServer));
        Assert.Equal([2L, 0L, 4L], filtered.Slices.Select(s => s.BytesFromServer));

        // A live flow whose only message is stamped after now still gets a span, and the message its slice.
        var live = new HttpFlow(flow.Request, 200) { WebSocket = new WebSocketData() };
        live.WebSocket.Add(new WebSocketMessage(Opcode.Text, true, "x"u8.ToArray(), 300));
        var ahead = MessageActivity.Measure(live, live.WebSocket, null, sliceCount: 10, now: 150, CancellationToken.None);
        Assert.Equal(200.001, ahead.End, 9);
        Assert.Equal(1, ahead.Slices[^1].MessagesFromClient);
    }
}
