using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// Transfer codings other than plain chunked, as mitmproxy 8.1.1's HTTP/1 layer treats them
/// (<c>net/http/http1/read.py</c>, <c>expected_http_body_size</c>): <c>gzip</c>, <c>deflate</c> or <c>compress</c>
/// before <c>chunked</c> is relayed with its Transfer-Encoding as sent, the chunked framing redone, the coded bytes
/// untouched (and recorded as they are, like mitmproxy's <c>raw_content</c>); one of those codings alone in a response
/// is read until the server closes and passed on the same way; any other coding is refused.
/// </summary>
public sealed class TransferCodingTests
{
    private const string Text = "hello, gzip transfer coding — hello, gzip transfer coding";

    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("gzip,chunked")]
    [InlineData("GZIP , Chunked")]
    public async Task AGzipThenChunkedResponse_ReachesTheClientAsTheServerSentIt_AndDecodes(string transferEncoding)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var gzipped = Gzip(Text);
        var answering = upstream.AnswerAsync(Concat($"HTTP/1.1 200 OK\r\nTransfer-Encoding: {transferEncoding}\r\n\r\n", Chunked(gzipped, 7)));

        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{upstream.Port}/z HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(stream);
        await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal(Codings(transferEncoding), Codings(RawWebSocketServer.HeaderValue(head, "Transfer-Encoding")));
        Assert.DoesNotContain("Content-Length", head, StringComparison.OrdinalIgnoreCase);

        // What a client does with it: undo chunked, then gzip.
        var body = await ProxyClients.ReadBodyAsync(stream, head);
        Assert.Equal(Text, Gunzip(body));

        // The connection stays usable: the chunked framing ended where it should.
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{upstream.Port}/next HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n"));
        var next = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        var nextHead = await ProxyClients.ReadHeadAsync(stream);
        await next;
        Assert.StartsWith("HTTP/1.1 200", nextHead, StringComparison.Ordinal);
        Assert.Equal("ok", Encoding.ASCII.GetString(await ProxyClients.ReadBodyAsync(stream, nextHead)));

        // As mitmproxy's raw_content: the body without its chunked framing, still gzip-coded, the header saying so.
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/z" && !f.IsLive);
        Assert.Null(flow.Error);
        Assert.Equal(gzipped, flow.Response!.Content);
        Assert.Equal(Codings(transferEncoding), Codings(flow.Response.Headers.GetJoined("Transfer-Encoding")));
    }

    [Fact]
    public async Task AGzipResponseWithoutChunked_IsReadUntilTheServerCloses_AndReachesTheClientAsSent()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var gzipped = Gzip(Text);
        var answering = upstream.AnswerAsync(Concat("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", gzipped));

        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{upstream.Port}/eof HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(stream);
        await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("gzip", RawWebSocketServer.HeaderValue(head, "Transfer-Encoding"));

        // Without chunked the body ends where the connection does (RFC 9112 §6.3), so the proxy closes it after the body.
        var body = await ProxyClients.ReadBodyAsync(stream, head);
        Assert.Equal(Text, Gunzip(body));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/eof" && !f.IsLive);
        Assert.Equal(gzipped, flow.Response!.Content);
    }

    [Theory]
    [InlineData("br, chunked")]
    [InlineData("chunked, chunked")]
    [InlineData("gzip, deflate, chunked")]
    public async Task AResponseWithATransferCodingMitmproxyDoesNotRelay_Is502NamingIt(string transferEncoding)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Concat($"HTTP/1.1 200 OK\r\nTransfer-Encoding: {transferEncoding}\r\n\r\n", Chunked([1, 2, 3], 3)));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{upstream.Port}/odd HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n");
        await answering;

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains($"Transfer-Encoding '{transferEncoding}'", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/odd" && !f.IsLive);
        Assert.Equal(502, flow.Response!.StatusCode);
        Assert.Equal(body.TrimEnd('\n'), flow.Error);
    }

    [Fact]
    public async Task AGzipThenChunkedRequest_ReachesTheServerAsTheClientSentIt()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var gzipped = Gzip(Text);
        var serving = Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var server = await listener.AcceptTcpClientAsync(cts.Token);
            var serverStream = server.GetStream();
            var requestHead = await ProxyClients.ReadHeadAsync(serverStream).WaitAsync(cts.Token);
            var requestBody = await ProxyClients.ReadBodyAsync(serverStream, requestHead).WaitAsync(cts.Token);
            await serverStream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"u8.ToArray(), cts.Token);
            return (requestHead, requestBody);
        });

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, Encoding.Latin1.GetString(Concat(
            $"POST http://127.0.0.1:{port}/up HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Chunked(gzipped, 5))), Encoding.Latin1);
        var (receivedHead, receivedBody) = await serving;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("gzip, chunked", RawWebSocketServer.HeaderValue(receivedHead, "Transfer-Encoding"));
        Assert.Equal(Text, Gunzip(receivedBody));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/up" && !f.IsLive);
        Assert.Equal(gzipped, flow.Request.Content);
    }

    [Theory]
    [InlineData("br, chunked")]
    [InlineData("chunked, chunked")]
    public async Task ARequestWithATransferCodingMitmproxyDoesNotRelay_IsRefusedWith400(string transferEncoding)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"POST http://{authority}/odd HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: {transferEncoding}\r\n\r\n3\r\nabc\r\n0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains($"Transfer-Encoding '{transferEncoding}'", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/odd" && !f.IsLive);
        Assert.Equal(400, flow.Response!.StatusCode);
        Assert.Equal(body.TrimEnd('\n'), flow.Error);
    }

    private static async Task<TcpClient> ConnectAsync(ProxyServer proxy)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        tcp.ReceiveTimeout = 10_000;
        return tcp;
    }

    /// <summary>The codings of a Transfer-Encoding value, as mitmproxy compares them: lower case, no blanks around commas.</summary>
    private static string Codings(string? value) =>
        string.Join(',', (value ?? "").Split(',').Select(coding => coding.Trim().ToLowerInvariant()));

    private static byte[] Gzip(string text)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(text));
        }

        return output.ToArray();
    }

    private static string Gunzip(byte[] bytes)
    {
        using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary><paramref name="data"/> in chunked framing, <paramref name="size"/> bytes a chunk.</summary>
    private static byte[] Chunked(byte[] data, int size)
    {
        using var output = new MemoryStream();
        for (var i = 0; i < data.Length; i += size)
        {
            var chunk = data.AsSpan(i, Math.Min(size, data.Length - i));
            output.Write(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"));
            output.Write(chunk);
            output.Write("\r\n"u8);
        }

        output.Write("0\r\n\r\n"u8);
        return output.ToArray();
    }

    private static byte[] Concat(string head, byte[] body) => [.. Encoding.ASCII.GetBytes(head), .. body];
}
