using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// What the proxy sends a server and what it accepts back, against RFC 9112 and mitmproxy: the request line of an
/// absolute URL without a path, no repeated POST, and responses whose framing is in doubt refused with their
/// connection closed, so a pooled connection never carries them into another client's exchange.
/// </summary>
public sealed class UpstreamConformanceTests
{
    [Theory]
    [InlineData("", "/")]
    [InlineData("?a=1", "/?a=1")]
    [InlineData("/p?a=1", "/p?a=1")]
    public async Task An_absolute_url_without_a_path_goes_to_the_server_as_slash(string rest, string expected)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}{rest} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.StartsWith($"GET {expected} HTTP/1.1\r\n", received, StringComparison.Ordinal);
        Assert.Equal(expected, (await proxy.WaitForFlowAsync(f => f.Request.Port == upstream.Port && !f.IsLive)).Request.Path);
    }

    [Fact]
    public async Task A_post_whose_server_closes_without_answering_is_not_sent_again()
    {
        // The first connection answers a GET and stays open; the POST that reuses it is read, and the connection closed.
        await using var server = await ScriptedServer.StartAsync((connection, request) =>
            connection == 0 && request == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" : null);
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{server.Port}";

        var (warm, _) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/warm HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", warm, StringComparison.Ordinal);
        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"POST http://{authority}/charge HTTP/1.1\r\nHost: {authority}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Single(server.Heads, h => h.StartsWith("POST /charge", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "both Content-Length and Transfer-Encoding")]
    [InlineData("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.0")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", "'5, 5' is not one number")]
    public async Task A_response_framed_in_doubt_is_a_502_and_its_connection_is_not_used_again(string response, string reason)
    {
        await using var server = await ScriptedServer.StartAsync((connection, request) =>
            connection == 0 ? response : "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"127.0.0.1:{server.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/doubt HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains(reason, body, StringComparison.Ordinal);

        // The next request, another client's, goes out on a new connection and gets its own answer.
        var (next, nextBody) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/next HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", next, StringComparison.Ordinal);
        Assert.Equal("next", nextBody);
        Assert.Equal(2, server.Connections);
    }

    [Fact]
    public async Task A_refused_handshake_keeps_its_transfer_coding_as_a_plain_response_does()
    {
        using var upstream = RawHttpUpstream.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var coded = new byte[] { 0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02 };
        var answering = upstream.AnswerAsync([.. "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: gzip\r\n\r\n"u8, .. coded]);
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"GET http://{authority}/socket HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            Encoding.Latin1);
        await answering;

        Assert.StartsWith("HTTP/1.1 403", head, StringComparison.Ordinal);
        Assert.Equal("gzip", RawWebSocketServer.HeaderValue(head, "Transfer-Encoding"));
        Assert.Equal(coded, Encoding.Latin1.GetBytes(body));
    }

    /// <summary>
    /// A keep-alive HTTP/1.1 server written by hand: for the n-th request on the c-th connection it sends what the script
    /// gives, or closes the connection when the script gives null. It records every request head and counts connections.
    /// </summary>
    private sealed class ScriptedServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(30));
        private readonly Func<int, int, string?> _script;
        private Task _accepting = Task.CompletedTask;
        private int _connections;

        private ScriptedServer(Func<int, int, string?> script) => _script = script;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Connections => Volatile.Read(ref _connections);

        public ConcurrentQueue<string> Heads { get; } = new();

        public static Task<ScriptedServer> StartAsync(Func<int, int, string?> script)
        {
            var server = new ScriptedServer(script);
            server._listener.Start();
            server._accepting = server.AcceptAsync();
            return Task.FromResult(server);
        }

        private async Task AcceptAsync()
        {
            var serving = new List<Task>();
            try
            {
                while (true)
                {
                    var tcp = await _listener.AcceptTcpClientAsync(_stop.Token);
                    serving.Add(ServeAsync(tcp, Interlocked.Increment(ref _connections) - 1));
                }
            }
            catch (OperationCanceledException)
            {
            }

            await Task.WhenAll(serving);
        }

        private async Task ServeAsync(TcpClient tcp, int connection)
        {
            using (tcp)
            {
                var stream = tcp.GetStream();
                try
                {
                    for (var request = 0; ; request++)
                    {
                        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(_stop.Token);
                        if (head.Length == 0)
                        {
                            return;
                        }

                        Heads.Enqueue(head);
                        if (_script(connection, request) is not { } answer)
                        {
                            return;
                        }

                        await stream.WriteAsync(Encoding.Latin1.GetBytes(answer), _stop.Token);
                    }
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException)
                {
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _stop.Dispose();
        }
    }
}
