using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// POST /api/flows/{id}/replay: a new WebSocket to the original's server, through the real upstream path, with WsWeb
/// as the client; the echo peer is a real Kestrel WebSocket server.
/// </summary>
public sealed class ReplayApiTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Fact]
    public async Task Replay_opens_a_live_flow_to_the_same_server_that_takes_injections_and_closes()
    {
        var (original, server) = await FinishedFlowAsync("first");

        var response = await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { });
        var summary = await ApiAssert.JsonAsync(response, HttpStatusCode.Created);
        var id = summary.GetProperty("id").GetString()!;
        Assert.NotEqual(original.Id, id);
        Assert.Equal($"/api/flows/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal(101, summary.GetProperty("status").GetInt32());
        Assert.True(summary.GetProperty("isLive").GetBoolean());
        Assert.True(summary.GetProperty("isWebSocket").GetBoolean());
        Assert.Equal("request", summary.GetProperty("replay").GetString());
        Assert.Equal(original.Id, summary.GetProperty("replayOf").GetString());

        // The handshake went as recorded, with a key of its own.
        var replay = app.Store.Get(id)!;
        Assert.Equal(original.Request.Path, replay.Request.Path);
        Assert.NotEqual(original.Request.Headers["Sec-WebSocket-Key"], replay.Request.Headers["Sec-WebSocket-Key"]);
        Assert.True(server.Received.IsEmpty, "nothing is resent unless asked");

        await ApiAssert.JsonAsync(
            await app.Api.PostJsonAsync($"/api/flows/{id}/messages", new { toClient = false, content = "again" }),
            HttpStatusCode.Created);

        // The server's echo is recorded on the replay (its client, WsWeb, reads it away); the 201 says only that the
        // message went out, so the server's record is read once the echo is back.
        await Eventually.AssertAsync(() => replay.WebSocket!.Snapshot().Any(m => !m.FromClient && m.Text == "again"), "the echo is recorded");
        Assert.Equal("again", Assert.Single(server.Texts));

        using var close = await app.Api.PostJsonAsync($"/api/flows/{id}/close", new { target = "both", code = 4000, reason = "done" });
        Assert.Equal(HttpStatusCode.NoContent, close.StatusCode);
        await Eventually.AssertAsync(() => !replay.IsLive, "the replay ends once both sides answered the close");
        Assert.Equal(4000, replay.WebSocket!.CloseCode);
        Assert.Null(replay.Error);
        Assert.False(original.IsLive);
    }

    [Fact]
    public async Task Resend_sends_what_the_server_got_from_the_original_client_in_order()
    {
        var (client, server, original) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("one");
            Assert.Equal("one", await client.ReceiveTextAsync());
            await client.SendBinaryAsync([1, 2, 3]);
            await client.ReceiveAsync();
            await ApiAssert.JsonAsync(
                await app.Api.PostJsonAsync($"/api/flows/{original.Id}/messages", new { toClient = false, content = "injected" }),
                HttpStatusCode.Created);
            Assert.Equal("injected", await client.ReceiveTextAsync());
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
        }

        await Eventually.AssertAsync(() => !original.IsLive, "the original flow ends");
        server.Received.Clear();

        var summary = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { resend = true }), HttpStatusCode.Created);
        var replay = app.Store.Get(summary.GetProperty("id").GetString()!)!;

        await Eventually.AssertAsync(() => server.Received.Count == 3, "the three client-side messages arrive");
        var received = server.Received.ToArray();
        Assert.Equal([WebSocketMessageType.Text, WebSocketMessageType.Binary, WebSocketMessageType.Text], received.Select(m => m.Type));
        Assert.Equal("one"u8.ToArray(), received[0].Data);
        Assert.Equal(new byte[] { 1, 2, 3 }, received[1].Data);
        Assert.Equal("injected"u8.ToArray(), received[2].Data);

        // On the replay they are the client's own messages, not injections, and the echoes come back.
        await Eventually.AssertAsync(() => replay.WebSocket!.Snapshot().Count == 6, "three messages and their echoes are recorded");
        Assert.All(replay.WebSocket!.Snapshot().Where(m => m.FromClient), m => Assert.False(m.Injected));

        using var kill = await app.Api.PostAsync(new Uri($"/api/flows/{replay.Id}/kill", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
        await Eventually.AssertAsync(() => !replay.IsLive, "a killed replay ends");
    }

    [Fact]
    public async Task A_refused_replay_is_a_finished_flow_with_the_servers_answer()
    {
        var original = AddFinishedHandshake(app.Echo.Port, "/no-such-path", imported: true);

        var summary = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
        Assert.Equal(404, summary.GetProperty("status").GetInt32());
        Assert.False(summary.GetProperty("isLive").GetBoolean());
        Assert.False(summary.GetProperty("isWebSocket").GetBoolean());
        Assert.Equal(original.Id, summary.GetProperty("replayOf").GetString());
        Assert.False(app.Store.Get(summary.GetProperty("id").GetString()!)!.IsLive);
    }

    [Fact]
    public async Task An_imported_flow_replays_to_its_server()
    {
        var original = AddFinishedHandshake(app.Echo.Port, "/echo?c=" + Guid.NewGuid().ToString("N"), imported: true);

        var summary = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { resend = true }), HttpStatusCode.Created);
        Assert.Equal(101, summary.GetProperty("status").GetInt32());
        var replay = app.Store.Get(summary.GetProperty("id").GetString()!)!;
        Assert.False(replay.IsImported);
        await Eventually.AssertAsync(() => replay.WebSocket!.Snapshot().Any(m => !m.FromClient && m.Text == "recorded"), "the recorded message is resent and echoed");

        using var kill = await app.Api.PostAsync(new Uri($"/api/flows/{replay.Id}/kill", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
    }

    [Fact]
    public async Task An_unreachable_server_is_recorded_as_the_replays_error()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var original = AddFinishedHandshake(port, "/echo", imported: false);
        var summary = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
        Assert.False(summary.GetProperty("isLive").GetBoolean());
        Assert.Equal(JsonValueKind.Null, summary.GetProperty("status").ValueKind);
        Assert.Contains($"could not reach 127.0.0.1:{port}", summary.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dashboards_own_listener_is_refused_as_a_replay_target()
    {
        var original = AddFinishedHandshake(app.WebPort, "/hubs/flows", imported: true);
        var summary = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
        Assert.False(summary.GetProperty("isLive").GetBoolean());
        Assert.Contains("refuses to proxy to its own listener", summary.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resend_for_a_plain_http_flow_is_a_409_and_an_unknown_id_a_404()
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "127.0.0.1", Port = app.Echo.Port, Path = "/", Headers = [] }, Timestamps.Now(TimeProvider.System));
        app.Store.Add(flow);
        var problem = await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/replay", new { resend = true }), HttpStatusCode.Conflict);
        Assert.Contains("not a WebSocket handshake; resend sends a WebSocket's messages again", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync("/api/flows/nope/replay", new { }), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_bad_body_is_a_400_naming_the_field()
    {
        var (original, _) = await FinishedFlowAsync("x");
        using var content = new StringContent("""{"resend": "yes"}""", Encoding.UTF8, "application/json");
        var response = await app.Api.PostAsync(new Uri($"/api/flows/{original.Id}/replay", UriKind.Relative), content);
        await ApiAssert.InvalidFieldAsync(response, "resend");
    }

    /// <summary>A WebSocket flow through the proxy that sent <paramref name="text"/> and closed; its server connection's record, emptied.</summary>
    private async Task<(HttpFlow Flow, PeerConnection Server)> FinishedFlowAsync(string text)
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync(text);
            Assert.Equal(text, await client.ReceiveTextAsync());
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the original flow ends");
        server.Received.Clear();
        return (flow, server);
    }

    /// <summary>A finished handshake flow as an import would add it, with one recorded client message, "recorded".</summary>
    private HttpFlow AddFinishedHandshake(int port, string path, bool imported)
    {
        var now = Timestamps.Now(TimeProvider.System);
        var flow = new HttpFlow(
            new HttpRequestData
            {
                Method = "GET",
                Scheme = "http",
                Host = "127.0.0.1",
                Port = port,
                Path = path,
                HttpVersion = "HTTP/1.1",
                Headers =
                [
                    new("Host", $"127.0.0.1:{port}"),
                    new("Connection", "Upgrade"),
                    new("Upgrade", "websocket"),
                    new("Sec-WebSocket-Version", "13"),
                    new("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
                TimestampStart = now,
            },
            now)
        {
            IsImported = imported,
            WebSocket = new WebSocketData(),
        };
        flow.WebSocket.Add(new WebSocketMessage(Opcode.Text, fromClient: true, "recorded"u8.ToArray(), now));
        app.Store.Add(flow);
        return flow;
    }
}
