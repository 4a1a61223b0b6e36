using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>
/// A close from the proxy (IWebSocketControl, the REST API, shutdown) to a peer that stopped reading: the write it
/// waits behind never ends, so the close gets the close timeout (5 s), after which that peer's connection is dropped,
/// the flow ends and records why; and a kill after a close is recorded as a kill.
/// </summary>
public sealed class CloseToAStalledPeerTests
{
    /// <summary>Far past the close timeout: only a close that hangs takes this long.</summary>
    private static readonly TimeSpan Hung = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan FlowEnds = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ACloseToAPeerThatStoppedReadingFailsWithinTheCloseTimeout_DropsItAndEndsTheFlow(bool toClient)
    {
        await using var relay = await Relay.StartAsync(serverReceiveBuffer: toClient ? null : 4096);
        var (proxy, client, upstream, flow) = (relay.Proxy, relay.Client, relay.Upstream, relay.Flow);
        // The other peer floods the one that reads nothing, until the proxy's write to it blocks and holds its write lock.
        var flood = Backpressure.FloodAsync(toClient ? upstream.Socket : client);
        await Backpressure.StalledAsync(flow);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(
            () => proxy.Control.CloseAsync(flow, toClient ? CloseTarget.Client : CloseTarget.Server, 4000, "maintenance").WaitAsync(Hung));

        var peer = toClient ? "client" : "server";
        Assert.Contains($"The close (4000) to the {peer} could not be delivered within 5 s", failure.Message, StringComparison.Ordinal);
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.False(proxy.Control.IsLive(flow));
        Assert.True(await client.EndsAsync(FlowEnds), "the proxy ended the client connection");
        Assert.True(await upstream.Socket.EndsAsync(FlowEnds), "the proxy ended the server connection");
        await flood;

        // The close the proxy started stays recorded (its code, the side it spoke for); the error says it never arrived.
        Assert.Equal(4000, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByProxy);
        Assert.Equal(!toClient, flow.WebSocket.ClosedByClient);
        Assert.Equal($"Flow {flow.Id}: {flow.Error}", failure.Message);
        Assert.Contains("connection was dropped", flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACloseToBothReachesTheReadingPeer_AndDropsOnlyTheOneThatStoppedReading()
    {
        await using var relay = await Relay.StartAsync();
        var (proxy, client, upstream, flow) = (relay.Proxy, relay.Client, relay.Upstream, relay.Flow);
        var flood = Backpressure.FloodAsync(upstream.Socket);
        await Backpressure.StalledAsync(flow);

        var closing = proxy.Control.CloseAsync(flow, CloseTarget.Both, 4000, "maintenance");

        // The server reads while it floods: its close is not held up by the client's.
        var atServer = await upstream.Socket.ReadRequiredFrameAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((Opcode.Close, 4000, "maintenance"), (atServer.Opcode, atServer.CloseCode, atServer.CloseReason));
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => closing.WaitAsync(Hung));

        Assert.Contains("The close (4000) to the client could not be delivered", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("server", failure.Message, StringComparison.Ordinal);
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.True(await client.EndsAsync(FlowEnds), "the proxy ended the client connection");
        await flood;
        Assert.Equal(4000, flow.WebSocket!.CloseCode);
        Assert.Contains("to the client could not be delivered", flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACallerThatStopsWaitingDoesNotLeaveTheCloseHalfDone()
    {
        await using var relay = await Relay.StartAsync();
        var (proxy, client, upstream, flow) = (relay.Proxy, relay.Client, relay.Upstream, relay.Flow);
        var flood = Backpressure.FloodAsync(upstream.Socket);
        await Backpressure.StalledAsync(flow);

        // As a REST caller that hangs up: the close was already claimed, so nothing else can reach the client, and
        // only the close going on to its end (or a drop) can end the flow.
        using var hangUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => proxy.Control.CloseAsync(flow, CloseTarget.Client, 4000, null, hangUp.Token).WaitAsync(Hung));

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.True(await client.EndsAsync(FlowEnds), "the proxy ended the client connection");
        await flood;
        Assert.Contains("to the client could not be delivered", flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKillAfterACloseIsRecordedAsTheFlowsError()
    {
        await using var relay = await Relay.StartAsync();
        var (proxy, client, upstream, flow) = (relay.Proxy, relay.Client, relay.Upstream, relay.Flow);

        // The client takes the close but never answers it: the close handshake is still open when the kill comes.
        await proxy.Control.CloseAsync(flow, CloseTarget.Client, 4000, "maintenance");
        var atClient = await client.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Close, 4000), (atClient.Opcode, atClient.CloseCode));
        proxy.Control.Kill(flow);

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.True(await client.EndsAsync(FlowEnds), "the proxy ended the client connection");
        Assert.True(await upstream.Socket.EndsAsync(FlowEnds), "the proxy ended the server connection");
        Assert.Equal("Connection killed.", flow.Error);
        Assert.Equal(4000, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByProxy);
    }

    /// <summary>A WebSocket relayed from a raw client to a raw server, and the flow recording it.</summary>
    private sealed class Relay : IAsyncDisposable
    {
        private RawWebSocketServer _server = null!;

        public ProxyServer Proxy { get; private set; } = null!;

        public RawWebSocket Client { get; private set; } = null!;

        public RawServerConnection Upstream { get; private set; } = null!;

        public HttpFlow Flow { get; private set; } = null!;

        public static async Task<Relay> StartAsync(int? serverReceiveBuffer = null)
        {
            var relay = new Relay { _server = RawWebSocketServer.Start(receiveBufferSize: serverReceiveBuffer) };
            try
            {
                relay.Proxy = await ProxyServer.StartAsync();
                var accepting = relay._server.AcceptAsync();
                relay.Client = await ProxyClients.ConnectRawAsync(relay.Proxy, relay._server.WsUri());
                relay.Upstream = await accepting;
                relay.Flow = await relay.Proxy.WaitForFlowAsync(f => f.IsWebSocket);
                return relay;
            }
            catch
            {
                await relay.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Upstream is not null)
            {
                await Upstream.DisposeAsync();
            }

            if (Client is not null)
            {
                await Client.DisposeAsync();
            }

            if (Proxy is not null)
            {
                await Proxy.DisposeAsync();
            }

            await _server.DisposeAsync();
        }
    }
}
