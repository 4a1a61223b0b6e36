using WsWeb.Core.Addons;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>
/// A peer that leaves while the relay is not reading it: its pump waits on the other peer (which stopped reading)
/// or on a hook holding one of its messages. Each side is watched meanwhile, so the flow ends instead of holding
/// both connections open; and what the peer sent before leaving still goes out if the wait ends in time.
/// </summary>
public sealed class PeerLeavingTests
{
    private static readonly TimeSpan FlowEnds = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AClientLeavingWhileTheServerStoppedReadingEndsTheFlow()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var accepting = server.AcceptAsync();
        var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var accepted = await accepting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        // The server reads nothing: the proxy's writes to it stall, and so does its reading of the client.
        var flood = Backpressure.FloodAsync(client);
        await Backpressure.StalledAsync(flow);
        client.Reset();
        await flood;

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.False(proxy.Control.IsLive(flow));
        Assert.True(await accepted.Socket.EndsAsync(FlowEnds), "the proxy closed its connection to the server");
    }

    [Fact]
    public async Task AServerLeavingWhileTheClientStoppedReadingEndsTheFlow()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var accepting = server.AcceptAsync();
        await using var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        var accepted = await accepting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        var flood = Backpressure.FloodAsync(accepted.Socket);
        await Backpressure.StalledAsync(flow);
        accepted.ResetTcp();
        await flood;

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.False(flow.WebSocket.ClosedByClient);
        Assert.True(await client.EndsAsync(FlowEnds), "the proxy closed its connection to the client");
    }

    [Fact]
    public async Task AServerLeavingWhileAHookHoldsItsMessageEndsTheFlow()
    {
        var hold = new HoldFirstMessage(fromClient: false);
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        var accepting = server.AcceptAsync();
        await using var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        var accepted = await accepting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        await accepted.Socket.SendTextAsync("held, then the server is gone");
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await accepted.DisposeAsync();

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended", FlowEnds);
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.False(flow.WebSocket.ClosedByClient);
        hold.Release.TrySetResult();
    }

    [Fact]
    public async Task WhatALeavingClientSentStillGoesOutWhenItsHeldMessageIsReleasedInTime()
    {
        var hold = new HoldFirstMessage(fromClient: true);
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddWebSocketAddon(hold));
        var accepting = server.AcceptAsync();
        var client = await ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var accepted = await accepting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        // A client that says its last word and leaves without waiting for the close handshake.
        await client.SendTextAsync("last words");
        await hold.Holding.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await client.SendCloseAsync(1000, "bye");
        await client.DisposeAsync();

        // Long enough for the watch to see the client gone; well inside the time a departed peer's wait gets.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        hold.Release.SetResult();

        var message = await accepted.Socket.ReadRequiredFrameAsync();
        var close = await accepted.Socket.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Text, "last words"), (message.Opcode, message.Text));
        Assert.Equal((1000, "bye"), (close.CloseCode, close.CloseReason));
        Assert.Equal(1000, flow.WebSocket!.CloseCode);
        Assert.Equal("bye", flow.WebSocket.CloseReason);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.False(flow.WebSocket.Messages[0].Dropped);
    }
}
