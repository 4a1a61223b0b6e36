using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>Ping, pong and close through the proxy, seen as raw frames on both ends.</summary>
public sealed class ControlFrameTests
{
    private static async Task<(RawWebSocket Client, RawServerConnection Server)> ConnectAsync(ProxyServer proxy, RawWebSocketServer server)
    {
        var client = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        var upstream = await server.AcceptAsync();
        return (await client, upstream);
    }

    [Fact]
    public async Task PingsAndPongsAreForwardedEndToEndAndCounted()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var (client, upstream) = await ConnectAsync(proxy, server);
        await using var _ = client;

        await client.SendAsync(Opcode.Ping, "are you there?"u8);
        var ping = await upstream.Socket.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Ping, ping.Opcode);
        Assert.True(ping.Masked);
        Assert.Equal("are you there?", ping.Text);

        await upstream.Socket.SendAsync(Opcode.Pong, ping.Payload);
        var pong = await client.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Pong, pong.Opcode);
        Assert.False(pong.Masked);
        Assert.Equal("are you there?", pong.Text);

        // And the other way: the proxy never answers a ping itself, the client does.
        await upstream.Socket.SendAsync(Opcode.Ping, "server ping"u8);
        var serverPing = await client.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Ping, "server ping"), (serverPing.Opcode, serverPing.Text));
        await client.SendAsync(Opcode.Pong, serverPing.Payload);
        var clientPong = await upstream.Socket.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Pong, "server ping"), (clientPong.Opcode, clientPong.Text));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        var ws = flow.WebSocket!;
        Assert.Equal((1L, 1L, 1L, 1L), (ws.ClientPings, ws.ServerPongs, ws.ServerPings, ws.ClientPongs));
        Assert.Empty(ws.Messages);
    }

    [Fact]
    public async Task ClientTcpLossWithoutCloseIsRecordedAs1006AndDropsTheServer()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var (client, upstream) = await ConnectAsync(proxy, server);
        await client.SendTextAsync("before");
        Assert.Equal("before", (await upstream.Socket.ReadRequiredFrameAsync()).Text);

        await client.DisposeAsync();

        Assert.True(await upstream.Socket.EndsWithoutFrameAsync(), "the server should see the connection end, with no frame");
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.NotNull(flow.WebSocket.TimestampEnd);
    }

    [Fact]
    public async Task ServerTcpLossWithoutCloseIsRecordedAs1006AndDropsTheClient()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var (client, upstream) = await ConnectAsync(proxy, server);
        await using var _ = client;

        upstream.DropTcp();

        Assert.True(await client.EndsWithoutFrameAsync(), "the client should see the connection end, with no frame");
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.Equal(1006, flow.WebSocket!.CloseCode);
        Assert.False(flow.WebSocket.ClosedByClient);
    }

    [Fact]
    public async Task CloseWithoutCodeIsRecordedAs1005AndForwardedEmpty()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var (client, upstream) = await ConnectAsync(proxy, server);
        await using var _ = client;

        await client.SendAsync(Opcode.Close, ReadOnlySpan<byte>.Empty);
        var atServer = await upstream.Socket.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Close, atServer.Opcode);
        Assert.Empty(atServer.Payload);

        await upstream.Socket.SendAsync(Opcode.Close, ReadOnlySpan<byte>.Empty);
        var atClient = await client.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Close, atClient.Opcode);
        Assert.Empty(atClient.Payload);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.Equal(1005, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.Null(flow.WebSocket.CloseReason);
        Assert.Null(flow.Error);
        Assert.True(await client.EndsWithoutFrameAsync(), "after the closing handshake the proxy ends the connection");
    }
}
