using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>What the proxy forwards is what it got: request targets, header bytes, and nothing added.</summary>
public sealed class WireFidelityTests
{
    [Fact]
    public async Task RequestTargetAndHeaderBytesReachTheServerUnchanged_AndNothingIsAdded()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        const string path = "/x/../a/%41%2e?q=%2e%2e/&r=a%2Fb";
        var authority = $"127.0.0.1:{upstream.Port}";

        // "café" in UTF-8, and two bytes that are not UTF-8 at all: both must arrive as sent.
        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\nX-Name: caf\u00C3\u00A9\r\nX-Raw: \u00FF\u00FE\r\n\r\n", Encoding.Latin1);
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.StartsWith($"GET {path} HTTP/1.1\r\n", received, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Name: caf\u00C3\u00A9\r\n", received, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Raw: \u00FF\u00FE\r\n", received, StringComparison.Ordinal);
        Assert.DoesNotContain("traceparent", received, StringComparison.OrdinalIgnoreCase);

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Equal(path, flow.Request.Path);
        Assert.Equal("café", flow.Request.Headers.GetJoined("X-Name"));
    }

    [Fact]
    public async Task ResponseHeaderBytesReachTheClientUnchanged_WithoutAServerHeaderOfOurs()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Name: caf\u00C3\u00A9\r\nX-Raw: \u00FF\r\n\r\nok"));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{upstream.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n", Encoding.Latin1);
        await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Name: caf\u00C3\u00A9\r\n", head, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Raw: \u00FF\r\n", head, StringComparison.Ordinal);
        Assert.DoesNotContain("Server:", head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("ok", body);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Equal("café", flow.Response!.Headers.GetJoined("X-Name"));
    }

    [Theory]
    [InlineData("Connection: close, X-Foo\r\nX-Foo: secret\r\n", "close, X-Foo", "X-Foo")]
    [InlineData("Connection: keep-alive, X-Foo\r\nX-Foo: secret\r\n", "keep-alive, X-Foo", "X-Foo")]
    [InlineData("Connection: X-Foo\r\nConnection: close\r\nX-Foo: secret\r\n", "X-Foo, close", "X-Foo")]
    [InlineData("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n", "Upgrade, HTTP2-Settings", "HTTP2-Settings")]
    public async Task FieldsTheConnectionHeaderListsAreNotForwarded_WhateverElseItLists(string headers, string connection, string listed)
    {
        // Kestrel shows the application a Connection value reduced to what it acts on (close, keep-alive, upgrade):
        // the other tokens, hop-by-hop by RFC 9110 §7.6.1, are read from the head as the client sent it.
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/c HTTP/1.1\r\nHost: {authority}\r\n{headers}X-Kept: k\r\n\r\n", Encoding.Latin1);
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("ok", body);
        Assert.DoesNotContain(listed + ":", received, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\r\nX-Kept: k\r\n", received, StringComparison.Ordinal);

        // The flow records the Connection header the client sent.
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/c" && !f.IsLive);
        Assert.Equal(connection, flow.Request.Headers.GetJoined("Connection"));
    }

    [Theory]
    [InlineData("Content-Length: 2\r\nContent-Length: 2\r\n")]
    public async Task EqualDuplicateContentLengthsAreCollapsedIntoOne(string headers)
    {
        // RFC 9110 §8.6: a recipient may take equal field lines for one; browsers and mitmproxy do. A list on one line
        // ("2, 2") SocketsHttpHandler cannot frame by, and mitmproxy refuses it too: a 502 (below).
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.Latin1.GetBytes($"HTTP/1.1 200 OK\r\n{headers}\r\nok"));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{upstream.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n", Encoding.Latin1);
        await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 2\r\n", head, StringComparison.Ordinal);
        Assert.Single(head.Split("\r\n"), line => line.StartsWith("Content-Length", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("ok", body);
    }

    [Theory]
    [InlineData("X-Bad: a\u0001b\r\nContent-Length: 0\r\n", "X-Bad")]
    [InlineData("Content-Length: 2\r\nContent-Length: 5\r\n", "Content-Length")]
    [InlineData("Content-Length: 2, 2\r\n", "Content-Length '2, 2' is not one number")]
    [InlineData("Content-Length: 2\r\n", "status 101", "101 Switching Protocols")]
    [InlineData("Content-Length: 2\r\n", "status 99", "099 Odd")]
    public async Task AResponseHeadKestrelCannotSendGives502NamingTheHeader(string headers, string name, string status = "200 OK")
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.Latin1.GetBytes($"HTTP/1.1 {status}\r\n{headers}\r\nok"));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{upstream.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n", Encoding.Latin1);
        await answering;

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains(name, body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Contains(name, flow.Error, StringComparison.Ordinal);

        // The flow shows what the client got: the 502, whose text names what the server said.
        Assert.Equal(502, flow.Response!.StatusCode);
    }

    [Fact]
    public async Task AnEmptyBodyKeepsItsContentHeaders()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-empty\r\nContent-Length: 0\r\n\r\n", Encoding.Latin1);

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: application/x-empty", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("X-Received-Length: 0", head, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("FFFFFFFFFFFFFFFFF2\r\n")]
    [InlineData("5\r\nhelloXX\r\n")]
    public async Task AMalformedChunkIsReportedAsMalformed_NotAsTheClientLeaving(string chunks)
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}", Encoding.Latin1);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("could not read the client's request body", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo" && !f.IsLive);
        Assert.DoesNotContain("closed the connection", flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMalformedRequestBodyIsTheClientsFault_Not502()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\nnot a chunk\r\n0\r\n\r\n", Encoding.Latin1);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("client's request body", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo" && !f.IsLive);
        Assert.Contains("client's request body", flow.Error, StringComparison.Ordinal);

        // Kestrel reports the bad body as a refused request too (before the 400 went out); that is this flow's error,
        // not a request of its own.
        Assert.Single(proxy.Store.Query(_ => true, take: 10));
    }

    [Fact]
    public async Task AClientResettingDuringItsRequestBodyIsRecordedAsTheClientsFault()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{upstream.Port}";

        using (var tcp = new TcpClient { NoDelay = true, LingerState = new LingerOption(true, 0) })
        {
            await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
            await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 100000\r\n\r\nonly the start"));
            await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo");
            await Task.Delay(200);
        }   // linger 0: the close is a reset

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo");
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        Assert.Contains("client", flow.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("could not reach", flow.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AClientLeavingBeforeTheServerAnswersEndsTheUpstreamRequest(bool webSocket)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var accepted = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstreamClosed = upstream.SilentAsync(accepted, TimeSpan.FromSeconds(30));
        var authority = $"127.0.0.1:{upstream.Port}";
        var request = webSocket
            ? ProxyClients.UpgradeRequest($"http://{authority}/slow", authority)
            : $"GET http://{authority}/slow HTTP/1.1\r\nHost: {authority}\r\n\r\n";

        using (var tcp = new TcpClient { NoDelay = true })
        {
            await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
            await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request));
            await accepted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }

        // The proxy gives up on the server as soon as the client has gone, not when (if ever) the server answers.
        await upstreamClosed.WaitAsync(TimeSpan.FromSeconds(10));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/slow");
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        Assert.Contains("client closed", flow.Error, StringComparison.Ordinal);
        Assert.Null(flow.Response);
    }

    [Fact]
    public async Task BytesAClientSendsWhileTheServerHasNotAnsweredAreNotBufferedWithoutLimit()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var accepted = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = upstream.SilentAsync(accepted, TimeSpan.FromSeconds(6));   // then it hangs up, and the proxy can stop
        var authority = $"127.0.0.1:{upstream.Port}";
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{authority}/slow HTTP/1.1\r\nHost: {authority}\r\n\r\n"));
        await accepted.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Nothing reads these bytes until the server answers, so TCP must push back on the client.
        var junk = new byte[64 * 1024];
        long written = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            while (written < 256L * 1024 * 1024)
            {
                await stream.WriteAsync(junk, stop.Token);
                written += junk.Length;
            }
        }
        catch (OperationCanceledException)
        {
            // Blocked by backpressure, as it should be.
        }

        Assert.True(written < 64L * 1024 * 1024, $"the client could push {written} bytes into the proxy");
    }
}
