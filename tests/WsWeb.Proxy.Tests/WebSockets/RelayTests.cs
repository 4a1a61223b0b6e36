using System.Net.WebSockets;
using System.Text;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>Real clients through the real proxy to a real echo server, all on loopback.</summary>
public sealed class RelayTests
{
    [Fact]
    public async Task WsThroughAbsoluteFormRelaysTextAndBinaryAndRecordsThem()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync(Encoding.UTF8.GetBytes("hello"), WebSocketMessageType.Text, true, CancellationToken.None);
        var text = await ProxyClients.ReceiveMessageAsync(client);
        await client.SendAsync(new byte[] { 0, 1, 2, 255 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var binary = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("hello", Encoding.UTF8.GetString(text.Data));
        Assert.Equal(WebSocketMessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, binary.Data);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 4, "four recorded messages");
        var messages = flow.WebSocket!.Messages;
        Assert.Equal("http", flow.Request.Scheme);
        Assert.Equal("/echo", flow.Request.Path);
        Assert.Equal(101, flow.Response!.StatusCode);
        Assert.True(messages[0].FromClient);
        Assert.Equal("hello", messages[0].Text);
        Assert.False(messages[1].FromClient);
        Assert.Equal(Opcode.Binary, messages[2].Type);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, messages[3].Content);
        Assert.Equal([0L, 1, 2, 3], messages.Select(m => m.Index));
    }

    [Fact]
    public async Task WssThroughConnectIsInterceptedWithOurCa()
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(upstreamCa.IssueLeaf("localhost"));
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WssUri());

        await client.SendAsync(Encoding.UTF8.GetBytes("secret over tls"), WebSocketMessageType.Text, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("secret over tls", Encoding.UTF8.GetString(echoed.Data));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("https", flow.Request.Scheme);
        Assert.True(flow.ClientConn.TlsEstablished);
        Assert.Equal("localhost", flow.ClientConn.Sni);
        Assert.True(flow.ServerConn.TlsEstablished);
        Assert.NotNull(flow.ServerConn.TlsVersion);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 2, "two recorded messages");
        Assert.Equal("secret over tls", flow.WebSocket!.Messages[0].Text);
    }

    [Fact]
    public async Task WsThroughPlainConnectTunnel()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var socket = await ProxyClients.ConnectThroughTunnelAsync(proxy, echo.WsUri());

        await socket.SendAsync(Encoding.UTF8.GetBytes("tunnelled"), WebSocketMessageType.Text, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(socket);

        Assert.Equal("tunnelled", Encoding.UTF8.GetString(echoed.Data));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("http", flow.Request.Scheme);
        Assert.False(flow.ClientConn.TlsEstablished);
    }

    [Fact]
    public async Task ClientCloseWithCodeAndReasonIsRecordedAndReachesTheServer()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.CloseAsync((WebSocketCloseStatus)4001, "bye", CancellationToken.None);

        Assert.Equal((WebSocketCloseStatus)4001, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);
        await Eventually.AssertAsync(() => !echo.ClosesReceived.IsEmpty, "server saw the close");
        Assert.True(echo.ClosesReceived.TryPeek(out var serverSaw));
        Assert.Equal((WebSocketCloseStatus)4001, serverSaw.Status);
        Assert.Equal("bye", serverSaw.Reason);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.True(flow.WebSocket!.ClosedByClient);
        Assert.Equal(4001, flow.WebSocket.CloseCode);
        Assert.Equal("bye", flow.WebSocket.CloseReason);
        Assert.NotNull(flow.WebSocket.TimestampEnd);
    }

    [Fact]
    public async Task ServerCloseWithCodeAndReasonIsRecordedAndReachesTheClient()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync(Encoding.UTF8.GetBytes("close:4001:bye"), WebSocketMessageType.Text, true, CancellationToken.None);
        var received = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal(WebSocketMessageType.Close, received.Type);
        Assert.Equal((WebSocketCloseStatus)4001, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await client.CloseOutputAsync((WebSocketCloseStatus)4001, "bye", CancellationToken.None);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.False(flow.WebSocket!.ClosedByClient);
        Assert.Equal(4001, flow.WebSocket.CloseCode);
        Assert.Equal("bye", flow.WebSocket.CloseReason);
    }
}
