using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>Requests Kestrel refuses before the proxy sees them get a body saying why, and an errored flow.</summary>
public sealed class KestrelRefusalTests
{
    [Theory]
    [InlineData("GARBAGE\r\n\r\n", "400", "Invalid request line")]
    [InlineData("GET http:///nohost HTTP/1.1\r\n\r\n", "400", "")]
    [InlineData("GET http://h/ HTTP/1.1\r\n\r\n", "400", "Host")]
    [InlineData("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "400", "Invalid request target")]
    [InlineData("GET http://h:99999/ HTTP/1.1\r\nHost: h:99999\r\n\r\n", "400", "")]
    [InlineData("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", "400", "header")]
    [InlineData("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400", "Content-Length")]
    [InlineData("POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "400", "chunked")]
    [InlineData("POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "400", "content length")]
    public async Task MalformedRequest_GetsAPlainTextReason_AndAnErroredFlow(string request, string status, string reason)
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await SendAsync(proxy, request);

        Assert.StartsWith($"HTTP/1.1 {status}", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: text/plain", head, StringComparison.Ordinal);
        Assert.StartsWith("WsWeb could not read this request: ", body, StringComparison.Ordinal);
        Assert.Contains(reason, body, StringComparison.OrdinalIgnoreCase);
        Assert.True(body.Length > "WsWeb could not read this request: \n".Length, body);
        Assert.DoesNotContain(": ''", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Error?.StartsWith("Malformed request", StringComparison.Ordinal) == true);
        Assert.Contains(status, flow.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GARBAGE\r\n\r\n", true)]
    [InlineData("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", true)]
    [InlineData("GET http://h/ HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", false)]
    [InlineData("GET http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length : 1\r\n\r\n", false)]
    public async Task TheHintOfWhatAProxyRequestLineLooksLikeComesOnlyWithRequestLineErrors(string request, bool hint)
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await SendAsync(proxy, request);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Equal(hint, body.Contains("a proxy request line looks like", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OversizedHeaders_Get431WithTheReason()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await SendAsync(proxy, $"GET http://h/ HTTP/1.1\r\nHost: h\r\nX-Big: {new string('a', RequestHeadLimits.ProxyMaxRequestHeadersTotalSize + 1024)}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431", head, StringComparison.Ordinal);
        Assert.Contains("too long", body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task OversizedRequestLine_Gets414WithTheReason()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await SendAsync(proxy, $"GET http://h/{new string('a', RequestHeadLimits.ProxyMaxRequestLineSize + 1024)} HTTP/1.1\r\nHost: h\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 414", head, StringComparison.Ordinal);
        Assert.Contains("too long", body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task MalformedRequest_InsideAPlainTunnel_AfterAGoodOne_GetsTheReason()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{upstream.Port} HTTP/1.1\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(stream), StringComparison.Ordinal);

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
        var ok = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 200", ok, StringComparison.Ordinal);
        await ProxyClients.ReadBodyAsync(stream, ok);

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        var body = Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head));
        Assert.Contains("Content-Length", body, StringComparison.Ordinal);
    }

    private static async Task<(string Head, string Body)> SendAsync(ProxyServer proxy, string request)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort, cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
        var body = await ProxyClients.ReadBodyAsync(stream, head).WaitAsync(cts.Token);
        return (head, Encoding.UTF8.GetString(body));
    }
}
