using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Forwarding;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// Replaying flows against real servers: a WebSocket with WsWeb as its client (Kestrel over TLS with deflate, and
/// Python), and a plain request with its body.
/// </summary>
public sealed class FlowReplayTests
{
    [Fact]
    public async Task A_post_over_https_is_sent_again_with_its_body_and_the_answer_recorded()
    {
        await using var upstream = await HttpUpstream.StartHttpsAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using (var client = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(proxy.ProxyUri), SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } }))
        {
            using var content = new StringContent("body to send again", Encoding.UTF8, "text/plain");
            using var answer = await client.PostAsync(upstream.Url("/echo", "https", "localhost"), content);
            Assert.Equal("body to send again", await answer.Content.ReadAsStringAsync());
        }

        var original = await proxy.WaitForFlowAsync(f => f.Request.Method == "POST" && !f.IsLive);
        var replay = await proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: false, CancellationToken.None);

        await Eventually.AssertAsync(() => !replay.IsLive, "the replay's response body arrives");
        Assert.Null(replay.Error);
        Assert.Equal("request", replay.IsReplay);
        Assert.Equal(original.Id, replay.ReplayOf);
        Assert.True(replay.ServerConn.TlsEstablished);
        Assert.Equal("body to send again", Encoding.UTF8.GetString(replay.Request.Content!));
        Assert.Equal(200, replay.Response!.StatusCode);
        Assert.Equal("body to send again", Encoding.UTF8.GetString(replay.Response.Content!));
        Assert.Equal("text/plain; charset=utf-8", replay.Request.Headers["Content-Type"]);
    }

    [Fact]
    public async Task A_server_that_never_answers_ends_the_replay_with_an_error_at_the_answer_timeout()
    {
        using var silent = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var timers = new ManualTimers();
        await using var proxy = await ProxyServer.StartAsync(services: s => s.AddSingleton<TimeProvider>(timers));
        var original = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "127.0.0.1", Port = port, Path = "/", Headers = [new("Host", $"127.0.0.1:{port}")], Content = [] }, 0);
        proxy.Store.Add(original);

        var replaying = proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: false, CancellationToken.None);
        using var accepted = await silent.AcceptTcpClientAsync();
        await ProxyClients.ReadHeadAsync(accepted.GetStream());   // the request arrived; no answer ever comes
        Assert.False(replaying.IsCompleted);

        while (!replaying.IsCompleted)
        {
            timers.FireAll();
            await Task.WhenAny(replaying, Task.Delay(50));
        }

        var replay = await replaying;
        Assert.False(replay.IsLive);
        Assert.Equal($"127.0.0.1:{port} did not answer the replay within 30 s.", replay.Error);
    }

    [Fact]
    public async Task A_request_whose_body_was_recorded_in_part_is_refused()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { BodyCaptureLimit = 4 });
        using (var client = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(proxy.ProxyUri) }))
        {
            using var content = new StringContent("longer than four bytes");
            using var answer = await client.PostAsync(upstream.Url("/echo"), content);
            answer.EnsureSuccessStatusCode();
        }

        var original = await proxy.WaitForFlowAsync(f => f.Request.Method == "POST" && !f.IsLive);
        var refused = await Assert.ThrowsAsync<ReplayRefusedException>(() =>
            proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: false, CancellationToken.None));
        Assert.Contains("recorded only in part (4 of 22 bytes", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(proxy.Store.Snapshot(), f => f.ReplayOf == original.Id);
    }

    [Fact]
    public async Task A_wss_flow_with_deflate_replays_over_tls_with_deflate_and_resends_its_client_messages()
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(upstreamCa.IssueLeaf("localhost"), enableCompression: true);
        await using var proxy = await ProxyServer.StartAsync();
        var text = string.Concat(Enumerable.Repeat("replay me, ", 100));
        using (var client = new ClientWebSocket())
        {
            client.Options.Proxy = new WebProxy(proxy.ProxyUri);
            client.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            client.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
            await client.ConnectAsync(echo.WssUri(), CancellationToken.None);
            await client.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
            await ProxyClients.ReceiveMessageAsync(client);
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        }

        var original = await proxy.WaitForFlowAsync(f => f.IsWebSocket && !f.IsLive);
        echo.Frames.Clear();

        var replay = await proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: true, CancellationToken.None);

        Assert.True(replay.IsLive);
        Assert.Equal("https", replay.Request.Scheme);
        Assert.True(replay.ServerConn.TlsEstablished);
        Assert.Equal("localhost", replay.ServerConn.Sni);
        Assert.Contains("permessage-deflate", replay.Response!.Headers["Sec-WebSocket-Extensions"], StringComparison.Ordinal);
        await Eventually.AssertAsync(() => replay.WebSocket!.Messages.Count == 2, "the resent message and its echo, recorded decompressed");
        Assert.All(replay.WebSocket!.Messages, m => Assert.Equal(text, m.Text));
        Assert.Equal(text, Encoding.UTF8.GetString(Assert.Single(echo.Frames).Data));

        await proxy.Control.CloseAsync(replay, CloseTarget.Both, 1000, "enough");
        await Eventually.AssertAsync(() => !replay.IsLive, "the replay ends after the close handshake");
        Assert.Equal(1000, replay.WebSocket.CloseCode);
        Assert.Null(replay.Error);
        await Eventually.AssertAsync(() => echo.ClosesReceived.Any(c => c.Reason == "enough"), "the server got the close");
    }

    [RequiresToolFact(ExternalTools.PythonWebsockets)]
    public async Task A_python_server_closing_the_replay_is_answered_and_recorded()
    {
        const string script = """
            import asyncio
            import websockets

            async def handler(ws, path=None):
                async for message in ws:
                    if message == "close me":
                        await ws.close(4001, "bye")
                        return
                    await ws.send(message)

            async def main():
                async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=None, close_timeout=5) as server:
                    print(server.sockets[0].getsockname()[1], flush=True)
                    await asyncio.Future()

            asyncio.run(main())
            """;
        await using var python = PythonProcess.Start(script);
        var port = int.Parse(await python.ReadLineAsync(TimeSpan.FromSeconds(15)), System.Globalization.CultureInfo.InvariantCulture);
        await using var proxy = await ProxyServer.StartAsync();
        using (var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, new Uri($"ws://127.0.0.1:{port}/py")))
        {
            await client.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            await ProxyClients.ReceiveMessageAsync(client);
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }

        var original = await proxy.WaitForFlowAsync(f => f.IsWebSocket && !f.IsLive);
        var replay = await proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: true, CancellationToken.None);
        await Eventually.AssertAsync(() => replay.WebSocket!.Messages.Count == 2, "hello and its echo");

        await proxy.Control.InjectAsync(replay, toClient: false, "close me"u8.ToArray(), isText: true);

        // WsWeb, the replay's client, answers the server's close; the server's close was clean, so the flow's is too.
        await Eventually.AssertAsync(() => !replay.IsLive, "the replay ends with the server's close");
        Assert.False(replay.WebSocket!.ClosedByClient);
        Assert.Equal(4001, replay.WebSocket.CloseCode);
        Assert.Equal("bye", replay.WebSocket.CloseReason);
        Assert.Null(replay.Error);
    }

    [Fact]
    public async Task Shutdown_closes_a_live_replay_with_1001()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using (var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri()))
        {
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }

        var original = await proxy.WaitForFlowAsync(f => f.IsWebSocket && !f.IsLive);
        var replay = await proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: false, CancellationToken.None);
        Assert.True(replay.IsLive);

        await proxy.DisposeAsync();

        Assert.False(replay.IsLive);
        Assert.Equal(1001, replay.WebSocket!.CloseCode);
        await Eventually.AssertAsync(() => echo.ClosesReceived.Any(c => c.Status == WebSocketCloseStatus.EndpointUnavailable), "the server got the 1001");
    }

    [Fact]
    public async Task A_replay_asked_for_during_shutdown_is_refused()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using (var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri()))
        {
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }

        var original = await proxy.WaitForFlowAsync(f => f.IsWebSocket && !f.IsLive);
        proxy.Services.GetRequiredService<WsWeb.Proxy.WebSockets.LiveRelays>().BeginShutdown();

        var refused = await Assert.ThrowsAsync<ReplayRefusedException>(() =>
            proxy.Services.GetRequiredService<FlowReplay>().StartAsync(original, resendClientMessages: false, CancellationToken.None));
        Assert.Contains("shutting down", refused.Message, StringComparison.Ordinal);
    }
}
