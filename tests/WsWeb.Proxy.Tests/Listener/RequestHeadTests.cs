using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>
/// Every request head on a proxy connection gets the ws:// → http:// rewrite, not only the first: after kept-alive
/// requests, pipelined, and inside a plain CONNECT tunnel; body bytes never do.
/// </summary>
public sealed class RequestHeadTests
{
    [Fact]
    public async Task GetWs_AfterAKeptAliveRequest_IsUpgraded()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        await WriteAsync(stream, $"GET {upstream.Url("/hello")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n");
        Assert.Equal("hello world", await ReadResponseBodyAsync(stream, "200"));

        await AssertUpgradesAsync(stream, echo);
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r\n\r\n")]
    public async Task GetWs_AfterEmptyLinesThatFollowABody_IsUpgraded(string emptyLines)
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        // Some clients end a body with a CRLF of their own; a server ignores empty lines before a request line (RFC 9112 §2.2).
        await WriteAsync(stream, $"POST {upstream.Url("/echo")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nContent-Length: 2\r\n\r\nab{emptyLines}");
        Assert.Equal("ab", await ReadResponseBodyAsync(stream, "200"));

        await AssertUpgradesAsync(stream, echo);
    }

    [Fact]
    public async Task GetWs_AfterAnEmptyLineOnAFreshConnection_IsUpgraded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        await WriteAsync(stream, "\r\n");
        await AssertUpgradesAsync(stream, echo);
    }

    [Fact]
    public async Task PostBodyHoldingAWsRequestLine_PassesUnchanged_AndTheNextHeadIsRewritten()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        var body = $"x\r\nGET ws://127.0.0.1:{echo.Port}/echo HTTP/1.1\r\nHost: h\r\n\r\n";
        await WriteAsync(stream, $"POST {upstream.Url("/echo")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nContent-Length: {body.Length}\r\n\r\n{body}");
        Assert.Equal(body, await ReadResponseBodyAsync(stream, "200"));

        await AssertUpgradesAsync(stream, echo);
    }

    [Fact]
    public async Task ChunkedBodyHoldingAWsRequestLine_PassesUnchanged_AndTheNextHeadIsRewritten()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        var line = $"GET ws://127.0.0.1:{echo.Port}/echo HTTP/1.1\r\n";
        var chunked = $"3;ext=1\r\nab\n\r\n{line.Length:x}\r\n{line}\r\n0\r\n\r\n";
        await WriteAsync(stream, $"POST {upstream.Url("/echo")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}");
        Assert.Equal("ab\n" + line, await ReadResponseBodyAsync(stream, "200"));

        await AssertUpgradesAsync(stream, echo);
    }

    [Theory]
    [InlineData("X-Checksum: 1\r\n")]
    [InlineData("X-Checksum: 1\r\nX-More: GET ws://h/ HTTP/1.1\r\n")]
    public async Task GetWs_AfterAChunkedBodyWithTrailerFields_IsUpgraded(string trailers)
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        // Trailer fields (RFC 9112 §7.1.2) belong to the body: the next head starts after the empty line that ends them.
        await WriteAsync(stream, $"POST {upstream.Url("/echo")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n{trailers}\r\n");
        Assert.Equal("abc", await ReadResponseBodyAsync(stream, "200"));

        await AssertUpgradesAsync(stream, echo);
    }

    [Fact]
    public async Task PipelinedGetWs_BehindAPlainRequest_IsUpgraded()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        // Both heads in one write: the second is already buffered when Kestrel finishes the first.
        await WriteAsync(stream, $"GET {upstream.Url("/hello")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n"
            + ProxyClients.UpgradeRequest(echo.WsUri().ToString(), $"127.0.0.1:{echo.Port}"));
        Assert.Equal("hello world", await ReadResponseBodyAsync(stream, "200"));

        var response = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
        await AssertEchoesAsync(stream);
    }

    [Fact]
    public async Task PipelinedGetWs_AfterARefusedUpgrade_IsUpgraded()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        // The first target is no WebSocket endpoint: its server answers 200 and the proxy relays that refusal.
        await WriteAsync(stream, ProxyClients.UpgradeRequest($"ws://127.0.0.1:{upstream.Port}/hello", $"127.0.0.1:{upstream.Port}")
            + ProxyClients.UpgradeRequest(echo.WsUri().ToString(), $"127.0.0.1:{echo.Port}"));
        var refused = await ProxyClients.ReadHeadAsync(stream);
        Assert.DoesNotContain("101", refused.Split("\r\n")[0], StringComparison.Ordinal);
        await ProxyClients.ReadBodyAsync(stream, refused);

        var response = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
        await AssertEchoesAsync(stream);
    }

    [Fact]
    public async Task GetWs_InsideAPlainConnectTunnel_IsUpgraded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        await WriteAsync(stream, $"CONNECT 127.0.0.1:{echo.Port} HTTP/1.1\r\nHost: 127.0.0.1:{echo.Port}\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(stream), StringComparison.Ordinal);

        await AssertUpgradesAsync(stream, echo);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("/echo", flow.Request.Path);
    }

    [Fact]
    public async Task Connect_AfterAnotherRequest_IsRefusedClearly_AndTheConnectionCloses()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();

        await WriteAsync(stream, $"GET {upstream.Url("/hello")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n");
        Assert.Equal("hello world", await ReadResponseBodyAsync(stream, "200"));

        // Tunnel bytes right behind the CONNECT must not be read as a request.
        await WriteAsync(stream, $"CONNECT 127.0.0.1:{upstream.Port} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        var head = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        var body = Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head));
        Assert.Contains("must be the first request on a connection", body, StringComparison.Ordinal);
        Assert.DoesNotContain("not an absolute URL", body, StringComparison.Ordinal);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await stream.ReadAsync(new byte[64], cts.Token));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Method == "CONNECT");
        Assert.Contains("first request", flow.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("3\r\nabc\r\n0\r\n\r\nGET", "Done", 13)]
    [InlineData("3;a=b;c\r\nabc\r\n0\r\n\r\n", "Done", 19)]
    [InlineData("A\r\n0123456789\r\n0\r\n\r\n", "Done", 20)]
    [InlineData("3\r\nabc\r\n0\r\n", "InBody", 11)]
    [InlineData("3\r\nab", "InBody", 5)]
    [InlineData("3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nGET", "Done", 27)]
    [InlineData("0\r\nA: 1\r\nB: 2;3\r\n\r\n", "Done", 19)]
    [InlineData("0\r\nA: 1\r\n", "InBody", 9)]
    [InlineData("0\r\nA: 1\nB: 2\r\n\r\n", "Unknown", 8)]
    [InlineData("0\r\nA: 1\r\n\n", "Unknown", 10)]
    [InlineData("0\r\nA: 1\rB\r\n\r\n", "Unknown", 9)]
    [InlineData("3\nabc\r\n0\r\n\r\n", "Unknown", 2)]
    [InlineData("\r\n", "Unknown", 1)]
    [InlineData("3 \r\nabc\r\n0\r\n\r\n", "Unknown", 2)]
    [InlineData("3\r\nabcd\r\n", "Unknown", 7)]
    [InlineData("FFFFFFFFF\r\n", "Unknown", 8)]
    public void ChunkedBodyScanner_FindsTheEndOfTheBody_OrSaysItCannot(string bytes, string expected, long used)
    {
        var scanner = default(ChunkedBodyScanner);
        var status = ChunkedScanStatus.InBody;
        long total = 0;

        // One byte at a time: the scanner must carry its state across any split.
        foreach (var b in Encoding.ASCII.GetBytes(bytes))
        {
            status = scanner.Feed(new ReadOnlySequence<byte>([b]), out var one);
            total += one;
            if (status != ChunkedScanStatus.InBody)
            {
                break;
            }
        }

        Assert.Equal(expected, status.ToString());
        Assert.Equal(used, total);

        var whole = default(ChunkedBodyScanner);
        Assert.Equal(expected, whole.Feed(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(bytes)), out var usedAtOnce).ToString());
        Assert.Equal(used, usedAtOnce);
    }

    private static async Task<TcpClient> ConnectAsync(ProxyServer proxy)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        tcp.ReceiveTimeout = 10_000;
        return tcp;
    }

    private static async Task WriteAsync(Stream stream, string text) => await stream.WriteAsync(Encoding.ASCII.GetBytes(text));

    private static async Task<string> ReadResponseBodyAsync(Stream stream, string status)
    {
        var head = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith($"HTTP/1.1 {status}", head, StringComparison.Ordinal);
        return Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head));
    }

    private static async Task AssertUpgradesAsync(Stream stream, EchoServer echo)
    {
        await WriteAsync(stream, ProxyClients.UpgradeRequest(echo.WsUri().ToString(), $"127.0.0.1:{echo.Port}"));
        var response = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
        await AssertEchoesAsync(stream);
    }

    private static async Task AssertEchoesAsync(Stream stream)
    {
        await using var socket = new RawWebSocket(stream, isClient: true);
        await socket.SendTextAsync("GET ws://x/ HTTP/1.1");
        Assert.Equal("GET ws://x/ HTTP/1.1", (await socket.ReadRequiredFrameAsync()).Text);
    }
}
