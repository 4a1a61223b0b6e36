using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>Requests the proxy refuses, and failures: what the client gets, what the flow says, what the log says.</summary>
public sealed class RequestAndFailureRecordTests
{
    [Fact]
    public async Task ARequestWithBothContentLengthAndTransferEncodingIsRefusedWith400AndRecorded()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"POST http://{authority}/smuggle HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("Content-Length", body, StringComparison.Ordinal);
        Assert.Contains("Transfer-Encoding", body, StringComparison.Ordinal);
        Assert.Equal("close", RawWebSocketServer.HeaderValue(head, "Connection"));   // RFC 9112 §6.3: close after such a request
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/smuggle" && !f.IsLive);
        Assert.Contains("Transfer-Encoding", flow.Error, StringComparison.Ordinal);
        Assert.Equal(400, flow.Response!.StatusCode);

        // The record shows the header the client sent, not the name Kestrel moved it to.
        Assert.Equal("5", flow.Request.Headers["Content-Length"]);
        Assert.Null(flow.Request.Headers["X-Content-Length"]);
    }

    [Theory]
    [InlineData("+5")]
    [InlineData("-0")]
    public async Task ARequestWhoseContentLengthIsNotDigitsAloneIsRefusedWith400AndNotForwarded(string contentLength)
    {
        // Kestrel reads both as numbers; a server behind the proxy may not, and the body's end would differ.
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"POST http://{authority}/signed HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {contentLength}\r\n\r\n" + (contentLength == "+5" ? "hello" : ""));

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("Content-Length is not a plain decimal number", body, StringComparison.Ordinal);
        Assert.Equal("close", RawWebSocketServer.HeaderValue(head, "Connection"));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/signed" && !f.IsLive);
        Assert.Equal(400, flow.Response!.StatusCode);
        Assert.Contains("RFC 9110", flow.Error, StringComparison.Ordinal);
        Assert.False(upstream.HasPendingConnection);
    }

    [Fact]
    public async Task AClientsOwnXContentLengthHeaderIsForwarded()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/own HTTP/1.1\r\nHost: {authority}\r\nX-Content-Length: 42\r\n\r\n");
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("42", RawWebSocketServer.HeaderValue(received, "X-Content-Length"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AChunkedRequestWithItsOwnXContentLengthHeaderIsForwarded(bool afterAContentLengthRequest)
    {
        // X-Content-Length is where Kestrel moves a Content-Length it found beside Transfer-Encoding; a client may
        // send a header of that name itself, and then there was no Content-Length to refuse.
        await using var proxy = await ProxyServer.StartAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var authority = $"127.0.0.1:{port}";
        var serving = Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var heads = new List<string>();
            for (var i = 0; i < (afterAContentLengthRequest ? 2 : 1); i++)
            {
                using var server = await listener.AcceptTcpClientAsync(cts.Token);
                var stream = server.GetStream();
                var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
                var body = await ProxyClients.ReadBodyAsync(stream, head).WaitAsync(cts.Token);
                heads.Add(head + Encoding.ASCII.GetString(body));
                await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray(), cts.Token);
            }

            return heads;
        });

        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var client = tcp.GetStream();
        if (afterAContentLengthRequest)
        {
            // A Content-Length on an earlier request of the connection says nothing about this one.
            await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/first HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 3\r\n\r\nabc"));
            var firstHead = await ProxyClients.ReadHeadAsync(client);
            Assert.StartsWith("HTTP/1.1 200", firstHead, StringComparison.Ordinal);
            await ProxyClients.ReadBodyAsync(client, firstHead);
        }

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/own HTTP/1.1\r\nHost: {authority}\r\nX-Content-Length: 42\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(client);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var received = (await serving)[^1];

        Assert.Equal("42", RawWebSocketServer.HeaderValue(received, "X-Content-Length"));
        Assert.Null(RawWebSocketServer.HeaderValue(received, "Content-Length"));
        Assert.EndsWith("\r\n\r\nhello", received, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/own" && !f.IsLive);
        Assert.Null(flow.Error);
        Assert.Equal("42", flow.Request.Headers["X-Content-Length"]);
    }

    [Fact]
    public async Task BothContentLengthAndTransferEncodingAreRefusedOnALaterRequestOfAConnectionToo()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{upstream.Port}";
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var client = tcp.GetStream();

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"));
        var firstHead = await ProxyClients.ReadHeadAsync(client);
        Assert.StartsWith("HTTP/1.1 200", firstHead, StringComparison.Ordinal);
        await ProxyClients.ReadBodyAsync(client, firstHead);

        await client.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/echo?second HTTP/1.1\r\nHost: {authority}\r\ncontent-length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(client);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo?second" && !f.IsLive);
        Assert.Equal("5", flow.Request.Headers["Content-Length"]);
    }

    [Fact]
    public async Task AnAbsoluteFormTargetOnPort0IsRefusedWith400_AsCONNECTIs()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, "GET http://127.0.0.1:0/ HTTP/1.1\r\nHost: 127.0.0.1:0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains("port", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHostThatDoesNotResolveIsOneWsWebCouldNotReach()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, "GET http://nosuchhost.invalid/ HTTP/1.1\r\nHost: nosuchhost.invalid\r\n\r\n");

        // Not "closed the connection before its answer was complete": no connection was ever made.
        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.StartsWith("WsWeb could not reach nosuchhost.invalid:80:", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AContentLengthWithLeadingZerosIsForwarded_OnBothListeners()
    {
        // Longer than Kestrel's 20-character buffer for a custom-decoded Content-Length, and valid all the same.
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"POST http://127.0.0.1:{upstream.Port}/echo HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nContent-Length: 00000000000000000000002\r\n\r\nhi");

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("hi", body);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Method == "POST" && !f.IsLive);
        Assert.Equal(2, flow.Request.ContentLength);

        using var web = new System.Net.Sockets.TcpClient();
        await web.ConnectAsync(System.Net.IPAddress.Loopback, proxy.WebPort);
        var stream = web.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1:{proxy.WebPort}\r\nContent-Length: 00000000000000000000002\r\n\r\nhi"));
        Assert.Matches("^HTTP/1.1 [1-5][0-9][0-9] ", await ProxyClients.ReadHeadAsync(stream));
    }

    [Theory]
    [InlineData("Content-Length: 2\r\nContent-Length: 3\r\n", "200")]
    [InlineData("X-Bad: a\u0001b\r\nContent-Length: 0\r\n", "200")]
    public async Task AResponseTheProxyCannotPassOnIsRecordedAsThe502TheClientGot(string headers, string serverStatus)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.Latin1.GetBytes($"HTTP/1.1 200 OK\r\n{headers}\r\nok"));

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{upstream.Port}/ HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\n\r\n", Encoding.Latin1);
        await answering;

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive);
        Assert.Equal(502, flow.Response!.StatusCode);
        Assert.Contains($"server's {serverStatus} response", flow.Error, StringComparison.Ordinal);
        Assert.Equal(body.TrimEnd('\n'), flow.Error);
    }

    [Fact]
    public async Task AServerClosingWithoutAnAnswerGetsTheInnermostReason()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            // Every connection: read the request head, then close without a word (SocketsHttpHandler may retry once).
            while (!stop.IsCancellationRequested)
            {
                using var tcp = await listener.AcceptTcpClientAsync(stop.Token);
                await ProxyClients.ReadHeadAsync(tcp.GetStream());
            }
        });

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => server);

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains("ended prematurely", body, StringComparison.Ordinal);
        Assert.DoesNotContain("An error occurred while sending the request", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AClientsBadRequestBodyIsLoggedAsTheClientsFault()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        var log = new MessageLog();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddSingleton<ILoggerProvider>(log));
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"POST http://{authority}/echo HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\nnot a chunk\r\n0\r\n\r\n", Encoding.Latin1);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo" && !f.IsLive);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        var entries = log.Messages.Where(m => m.Contains(flow.Id, StringComparison.Ordinal)).ToList();
        Assert.Contains(entries, m => m.Contains("client", StringComparison.Ordinal));
        Assert.DoesNotContain(entries, m => m.Contains("upstream", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task AServerThatAnswersEarlyAndResetsDuringALargeUploadIsNotCalledUnreachable_AndTheSentBodyIsRecorded()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var tcp = await listener.AcceptTcpClientAsync();
            var stream = tcp.GetStream();
            await ProxyClients.ReadHeadAsync(stream);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large"));
            await Task.Delay(100);
        });   // closed with the body unread: the kernel resets the connection

        const int size = 50 * 1024 * 1024;
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST http://127.0.0.1:{port}/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {size}\r\n\r\n"));
        var sending = Task.Run(async () =>
        {
            var chunk = new byte[64 * 1024];
            try
            {
                for (var sent = 0; sent < size; sent += chunk.Length)
                {
                    await stream.WriteAsync(chunk);
                }
            }
            catch (IOException)
            {
                // The proxy may close once it has answered.
            }
        });

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
        var body = Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head).WaitAsync(cts.Token));
        await server;

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/upload" && !f.IsLive, TimeSpan.FromSeconds(20));
        if (head.StartsWith("HTTP/1.1 502", StringComparison.Ordinal))
        {
            Assert.DoesNotContain("could not reach", body, StringComparison.Ordinal);
            Assert.Contains("request body", body, StringComparison.Ordinal);
        }
        else
        {
            Assert.StartsWith("HTTP/1.1 413", head, StringComparison.Ordinal);
        }

        Assert.True(flow.Request.ContentLength > 0, "the body sent before the reset is not recorded");
        Assert.NotNull(flow.Request.Content);
        tcp.Client.Close();
        await sending;
    }

    private sealed class MessageLog : ILoggerProvider
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(MessageLog log) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                log.Messages.Enqueue(formatter(state, exception));
        }
    }
}
