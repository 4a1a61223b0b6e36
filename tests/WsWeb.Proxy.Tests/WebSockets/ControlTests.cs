using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Core.Addons;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>IWebSocketControl (inject, close, kill) and shutdown, on real connections.</summary>
public sealed class ControlTests
{
    [Fact]
    public async Task InjectFromOutsideHooksReachesEitherPeerAndIsRecorded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        // From another thread, as a script or the REST API would.
        var toClient = await Task.Run(() => proxy.Control.InjectAsync(flow, toClient: true, "to the client"u8.ToArray(), isText: true));
        var atClient = await ProxyClients.ReceiveMessageAsync(client);
        var toServer = await proxy.Control.InjectAsync(flow, toClient: false, new byte[] { 9, 8, 7 }, isText: false);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("to the client", Encoding.UTF8.GetString(atClient.Data));
        Assert.Equal(new byte[] { 9, 8, 7 }, echoed.Data);
        Assert.True(echo.Frames.TryPeek(out var atServer));
        Assert.Equal(new byte[] { 9, 8, 7 }, atServer.Data);
        Assert.True(toClient.Injected);
        Assert.False(toClient.FromClient);
        Assert.True(toServer.FromClient);
        Assert.Equal(0, toClient.Index);
        Assert.Equal(1, toServer.Index);
    }

    [Fact]
    public async Task InjectionWaitsBehindAMessageAHookHolds_SoThePeerGetsThemInIndexOrder()
    {
        var hold = new HoldFirstMessage();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        await client.SendAsync("held"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var injecting = proxy.Control.InjectAsync(flow, toClient: false, "injected"u8.ToArray(), isText: true);

        // The server gets nothing while the held message waits; the injection is queued behind it.
        await Task.Delay(200);
        Assert.Empty(echo.Frames);
        Assert.False(injecting.IsCompleted);

        var released = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        hold.Release.SetResult();
        var injected = await injecting.WaitAsync(TimeSpan.FromSeconds(10));
        var first = await ProxyClients.ReceiveMessageAsync(client);
        var second = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("held", Encoding.UTF8.GetString(first.Data));
        Assert.Equal("injected", Encoding.UTF8.GetString(second.Data));
        Assert.Equal(["held", "injected"], echo.Frames.Select(f => Encoding.UTF8.GetString(f.Data)));
        var toServer = flow.WebSocket!.Messages.Where(m => m.FromClient).ToList();
        Assert.Equal(["held", "injected"], toServer.Select(m => m.Text));
        Assert.Same(injected, toServer[1]);
        Assert.True(toServer[0].Index < injected.Index);

        // Its time is when it went out behind the held one, not when it was queued: the flow's times do not run backwards.
        Assert.True(injected.Timestamp >= released - 0.001, $"injected at {injected.Timestamp}, after the release at {released}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task PingsAndPongsPassWhileAMessageIsHeld_SoKeepalivesDoNotTimeOut(bool holdClientMessage)
    {
        // A client library answers its server's keepalive pings by itself; were its pong held behind a message the
        // user is still deciding on, the server would drop the connection at its ping timeout. Either direction.
        var hold = new HoldFirstMessage(fromClient: holdClientMessage);
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        var (holder, other) = holdClientMessage ? (client, upstream.Socket) : (upstream.Socket, client);

        await holder.SendTextAsync("held");
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // The other peer pings; the ping reaches the holder, and the holder's pong comes back while the message waits.
        await other.SendAsync(Opcode.Ping, "keepalive"u8);
        var ping = await holder.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Ping, "keepalive"), (ping.Opcode, ping.Text));
        await holder.SendAsync(Opcode.Pong, "keepalive"u8);
        var pong = await other.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Pong, "keepalive"), (pong.Opcode, pong.Text));
        Assert.Equal(holdClientMessage, pong.Masked);

        // The holder's own ping goes through too, and its answer comes back.
        await holder.SendAsync(Opcode.Ping, "are you there"u8);
        Assert.Equal((Opcode.Ping, "are you there"), (await other.ReadRequiredFrameAsync()) is var p ? (p.Opcode, p.Text) : default);
        await other.SendAsync(Opcode.Pong, "are you there"u8);
        Assert.Equal(Opcode.Pong, (await holder.ReadRequiredFrameAsync()).Opcode);

        // A data message after the held one still waits for it, and so does what follows it, pings included: the
        // proxy does not read past a message it may not pass on yet.
        await holder.SendTextAsync("after");
        await holder.SendAsync(Opcode.Ping, "behind"u8);
        await Task.Delay(300);

        // Passed on early, "behind" would arrive first.
        hold.Release.SetResult();
        Assert.Equal("held", (await other.ReadRequiredFrameAsync()).Text);
        Assert.Equal("after", (await other.ReadRequiredFrameAsync()).Text);
        Assert.Equal((Opcode.Ping, "behind"), (await other.ReadRequiredFrameAsync()) is var b ? (b.Opcode, b.Text) : default);

        var ws = flow.WebSocket!;
        await Eventually.AssertAsync(() => ws.Messages.Count == 2, "the held message and the one after it recorded");
        Assert.Equal(["held", "after"], ws.Messages.Select(m => m.Text));
        Assert.Equal((2, 1), holdClientMessage ? (ws.ClientPings, ws.ServerPings) : (ws.ServerPings, ws.ClientPings));
        Assert.Equal((1, 1), (ws.ClientPongs, ws.ServerPongs));
        Assert.True(flow.IsLive);
    }

    [Fact]
    public async Task InjectCloseAndKillFailClearlyOnAClosedFlow()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");

        var inject = Assert.Throws<InvalidOperationException>(() => proxy.Control.Inject(flow, true, "late"u8.ToArray(), true));
        Assert.Contains("closed", inject.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => proxy.Control.CloseAsync(flow, CloseTarget.Both, 1000, null));
        Assert.Throws<InvalidOperationException>(() => proxy.Control.Kill(flow));
        Assert.False(proxy.Control.IsLive(flow));
    }

    [Fact]
    public async Task CloseFromTheProxyReachesBothPeers()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        await proxy.Control.CloseAsync(flow, CloseTarget.Both, 4000, "maintenance");
        var atClient = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal(WebSocketMessageType.Close, atClient.Type);
        Assert.Equal((WebSocketCloseStatus)4000, client.CloseStatus);
        Assert.Equal("maintenance", client.CloseStatusDescription);
        await Eventually.AssertAsync(() => !echo.ClosesReceived.IsEmpty, "server saw the close");
        Assert.True(echo.ClosesReceived.TryPeek(out var atServer));
        Assert.Equal((WebSocketCloseStatus)4000, atServer.Status);
        Assert.Equal("maintenance", atServer.Reason);
        Assert.Equal(4000, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByProxy);
    }

    [Fact]
    public async Task KillAbortsBothConnections()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        proxy.Control.Kill(flow);

        await Assert.ThrowsAnyAsync<WebSocketException>(() => ProxyClients.ReceiveMessageAsync(client));
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.NotNull(flow.Error);
    }

    [Fact]
    public async Task ShutdownClosesLiveWebSocketsWith1001OnBothSides()
    {
        await using var echo = await EchoServer.StartAsync();
        var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        var receive = ProxyClients.ReceiveMessageAsync(client);
        await proxy.DisposeAsync();
        var atClient = await receive;

        Assert.Equal(WebSocketMessageType.Close, atClient.Type);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, client.CloseStatus);
        await Eventually.AssertAsync(() => !echo.ClosesReceived.IsEmpty, "server saw the close");
        Assert.True(echo.ClosesReceived.TryPeek(out var atServer));
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, atServer.Status);
        Assert.Equal(1001, flow.WebSocket!.CloseCode);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task AClientLeavingWhileItsMessageIsHeldEndsTheFlow(bool tls, bool closeFrameFirst)
    {
        var hold = new HoldFirstMessage();
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(tls ? upstreamCa.IssueLeaf("localhost") : null);
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        var client = await ProxyClients.ConnectRawAsync(proxy, tls ? echo.WssUri() : echo.WsUri());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        await client.SendTextAsync("held, then the client is gone");
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));
        if (closeFrameFirst)
        {
            // As a browser closing its tab: a close frame (queued behind the held message), then the TCP FIN.
            await client.SendCloseAsync(1001, "tab closed");
        }

        await client.DisposeAsync();

        // Nobody decides on the held message, yet the flow ends: the client's socket was watched meanwhile, and the
        // hold got the close timeout (5 s) to end on its own.
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", TimeSpan.FromSeconds(20));
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.False(proxy.Control.IsLive(flow));
        hold.Release.TrySetResult();
    }

    [Fact]
    public async Task ShutdownDoesNotWaitOnAPeerThatStoppedReading_AndRefusesNewWebSockets()
    {
        await using var server = RawWebSocketServer.Start();
        await using var echo = await EchoServer.StartAsync();
        var proxy = await ProxyServer.StartAsync();
        var accepting = server.AcceptAsync();
        await using var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var accepted = await accepting;

        // The server floods a client that never reads, until the proxy's write to the client blocks.
        using var stopFlood = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var flood = Task.Run(async () =>
        {
            var chunk = new byte[256 * 1024];
            try
            {
                while (!stopFlood.IsCancellationRequested)
                {
                    await accepted.Socket.SendAsync(Opcode.Binary, chunk, cancellationToken: stopFlood.Token);
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The proxy dropped the connection, or the test is over.
            }
        });
        await Task.Delay(TimeSpan.FromSeconds(1));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stopping = proxy.DisposeAsync().AsTask();
        await Eventually.AssertAsync(() => proxy.Services.GetRequiredService<WsWeb.Proxy.WebSockets.LiveRelays>().ShuttingDown, "shutdown began");
        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, ProxyClients.UpgradeRequest(echo.WsUri().ToString().Replace("ws://", "http://", StringComparison.Ordinal), $"127.0.0.1:{echo.Port}"));
        await stopping;
        stopFlood.Cancel();
        await flood;

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"shutdown took {clock.Elapsed}");
        Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
        RawFrame? frame;
        while ((frame = await accepted.Socket.ReadFrameAsync()) is { Opcode: not Opcode.Close })
        {
        }

        Assert.Equal(1001, frame?.CloseCode);
    }

    [Fact]
    public async Task AMessageAheadOfAHeldOneGoesOutWithoutWaitingForIt()
    {
        var hold = new HoldFirstMessage(containing: "secret");
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        var accepting = server.AcceptAsync();
        await using var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var accepted = await accepting;

        // Both in one TCP write, so the relay reads them in one go: the first is written, the second held.
        await client.SendRawAsync([.. RawWebSocket.BuildFrame(Opcode.Text, "public"u8), .. RawWebSocket.BuildFrame(Opcode.Text, "my secret"u8)]);
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var first = await accepted.Socket.ReadRequiredFrameAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("public", first.Text);

        hold.Release.SetResult();
        var second = await accepted.Socket.ReadRequiredFrameAsync();
        Assert.Equal("my secret", second.Text);
    }
}
