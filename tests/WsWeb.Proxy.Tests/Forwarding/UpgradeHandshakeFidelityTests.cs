using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>A WebSocket handshake reaches each side as the other sent it: method, Upgrade token, and the server's 101 head.</summary>
public sealed class UpgradeHandshakeFidelityTests
{
    // RFC 6455's sample key (used by ProxyClients.UpgradeRequest) and its accept value.
    private const string SampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    private static string Upgrade(string method, string authority, string upgrade = "websocket") =>
        $"{method} http://{authority}/ws HTTP/1.1\r\nHost: {authority}\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// <summary>Sends <paramref name="request"/> and reads the response head only (a 101 is followed by frames, not a body).</summary>
    private static async Task<string> HandshakeAsync(ProxyServer proxy, string request)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, proxy.ProxyPort, cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request), cts.Token);
        return await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
    }

    [Fact]
    public async Task ANonGetUpgradeGoesUpstreamWithItsOwnMethod_AsRecorded()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, Upgrade("POST", authority));
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 405", head, StringComparison.Ordinal);
        Assert.StartsWith("POST /ws HTTP/1.1\r\n", received, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Equal("POST", flow.Request.Method);
    }

    [Fact]
    public async Task TheUpgradeTokenGoesBothWaysAsSpelled()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {SampleAccept}\r\n\r\n"));

        var head = await HandshakeAsync(proxy, Upgrade("GET", $"127.0.0.1:{upstream.Port}", upgrade: "WebSocket"));
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Contains("\r\nUpgrade: WebSocket\r\n", received, StringComparison.Ordinal);
        Assert.Contains("\r\nUpgrade: WebSocket\r\n", head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A101WithoutAnUpgradeHeaderIsRelayedWithoutOne()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {SampleAccept}\r\n\r\n"));

        var head = await HandshakeAsync(proxy, Upgrade("GET", $"127.0.0.1:{upstream.Port}"));
        await answering;

        // RFC 6455 §4.1: such a client fails the handshake; that is the client's call, not the proxy's to paper over.
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Null(RawWebSocketServer.HeaderValue(head, "Upgrade"));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port);
        Assert.Null(flow.Response!.Headers["Upgrade"]);
    }

    [Fact]
    public async Task AnUpgradeListingWebSocketAmongOtherProtocolsIsAWebSocketUpgrade()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {SampleAccept}\r\n\r\n"));

        var head = await HandshakeAsync(proxy, Upgrade("GET", $"127.0.0.1:{upstream.Port}", upgrade: "websocket, h2c"));
        var received = await answering;

        // Only the protocol the proxy can relay is asked for upstream.
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Equal("websocket", RawWebSocketServer.HeaderValue(received, "Upgrade"));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && f.WebSocket is not null);
        Assert.Equal(101, flow.Response!.StatusCode);
    }

    [Fact]
    public async Task A101WithAnExtensionWeNeverOfferedIsRecordedAsThe502TheClientGot()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {SampleAccept}\r\nSec-WebSocket-Extensions: x-unknown\r\n\r\n"));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, Upgrade("GET", $"127.0.0.1:{upstream.Port}"));
        await answering;

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains("extensions", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Equal(502, flow.Response!.StatusCode);
        Assert.Contains("101", flow.Error, StringComparison.Ordinal);
        Assert.Null(flow.WebSocket);
    }
}
