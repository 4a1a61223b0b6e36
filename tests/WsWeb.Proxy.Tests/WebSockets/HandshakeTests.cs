using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>The opening handshake through the proxy: negotiation, refusals and failures.</summary>
public sealed class HandshakeTests
{
    /// <summary>
    /// A loopback port that refuses connections while the returned socket lives: bound but not listening, a connect to it
    /// gets ECONNREFUSED, and meanwhile the kernel hands it to no socket that asks for any free port (another test's
    /// listener on port 0, an outgoing connection), as it could a port found free and released.
    /// </summary>
    private static (Socket Reserved, int Port) RefusingPort()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (socket, ((IPEndPoint)socket.LocalEndPoint!).Port);
    }

    [Fact]
    public async Task SubprotocolChosenByTheServerReachesTheClientAndIsRecorded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri(), "chat.v1", "chat.v2");

        Assert.Equal("chat.v2", client.SubProtocol);
        Assert.True(echo.NegotiatedSubProtocols.TryPeek(out var chosen));
        Assert.Equal("chat.v2", chosen);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("chat.v2", flow.Response!.Headers["Sec-WebSocket-Protocol"]);
        var offered = flow.Request.Headers.GetJoined("Sec-WebSocket-Protocol");
        Assert.NotNull(offered);
        Assert.Contains("chat.v1", offered);
        Assert.Contains("chat.v2", offered);
    }

    [Fact]
    public async Task UpstreamRefusalIsRelayedWithItsBodyAndRecordedWithoutWebSocket()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var url = echo.WsUri("/refuse").ToString().Replace("ws://", "http://", StringComparison.Ordinal);

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, ProxyClients.UpgradeRequest(url, $"127.0.0.1:{echo.Port}"));

        Assert.StartsWith("HTTP/1.1 403", head, StringComparison.Ordinal);
        Assert.Equal("go away", body);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/refuse");
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.Equal(403, flow.Response!.StatusCode);
        Assert.Equal("go away", Encoding.UTF8.GetString(flow.Response.Content!));
        Assert.Null(flow.WebSocket);

        // ClientWebSocket sees the same refusal.
        using var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.CollectHttpResponseDetails = true;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<WebSocketException>(() => client.ConnectAsync(echo.WsUri("/refuse"), cts.Token));
        Assert.Equal(HttpStatusCode.Forbidden, client.HttpStatusCode);
    }

    [Fact]
    public async Task UnreachableUpstreamGives502WithTheReasonAndRecordsTheError()
    {
        await using var proxy = await ProxyServer.StartAsync();
        var (reserved, port) = RefusingPort();
        using var r = reserved;

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, ProxyClients.UpgradeRequest($"http://127.0.0.1:{port}/echo", $"127.0.0.1:{port}"));

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains($"could not reach 127.0.0.1:{port}", body, StringComparison.Ordinal);
        Assert.Contains("ConnectionRefused", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == port);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.NotNull(flow.Error);
        Assert.Contains("could not reach", flow.Error, StringComparison.Ordinal);
        Assert.Null(flow.Response);   // no server answered (as in mitmproxy): the error says why
        Assert.Null(flow.WebSocket);
    }

    [Fact]
    public async Task UnreachableUpstreamInsideConnectTunnelGives502()
    {
        await using var proxy = await ProxyServer.StartAsync();
        var (reserved, port) = RefusingPort();
        using var r = reserved;
        var target = new Uri($"ws://127.0.0.1:{port}/echo");

        await using var stream = await ProxyClients.OpenTunnelAsync(proxy, target);
        var head = await ProxyClients.HandshakeAsync(stream, target);
        var body = Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head));

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains($"could not reach 127.0.0.1:{port}", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == port && f.Request.Method == "GET");
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        Assert.NotNull(flow.Error);
    }

    [Fact]
    public async Task MalformedConnectGets400WithTheReason()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, "CONNECT nohostport HTTP/1.1\r\nHost: nohostport\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("'nohostport' is not host:port", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OriginFormRequestToTheProxyPortGets400WithTheReason()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET / HTTP/1.1\r\nHost: 127.0.0.1:{proxy.ProxyPort}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("is not an absolute URL", body, StringComparison.Ordinal);
        Assert.Contains("proxy", body, StringComparison.Ordinal);
    }
}
