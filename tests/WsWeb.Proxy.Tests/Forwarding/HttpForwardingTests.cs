using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>Plain HTTP through the proxy (absolute-form for http, CONNECT + TLS for https) to a real Kestrel upstream.</summary>
public sealed class HttpForwardingTests
{
    private static async Task<HttpUpstream> StartUpstreamAsync(string scheme)
    {
        if (scheme == "http")
        {
            return await HttpUpstream.StartAsync();
        }

        return await HttpUpstream.StartHttpsAsync();
    }

    private static Uri Url(HttpUpstream upstream, string scheme, string path) =>
        upstream.Url(path, scheme, scheme == "https" ? "localhost" : "127.0.0.1");

    private static HttpClient CreateClient(ProxyServer proxy) => new(new SocketsHttpHandler
    {
        Proxy = new WebProxy(proxy.ProxyUri),
        UseProxy = true,
        AutomaticDecompression = DecompressionMethods.None,
        SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate) },
    })
    {
        Timeout = TimeSpan.FromSeconds(15),
    };

    private static async Task<HttpFlow> EndedFlowAsync(ProxyServer proxy, Func<HttpFlow, bool> predicate)
    {
        var flow = await proxy.WaitForFlowAsync(predicate);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        return flow;
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task GetAndPostAreForwardedOnOneKeptAliveConnectionAndRecorded(string scheme)
    {
        await using var upstream = await StartUpstreamAsync(scheme);
        await using var proxy = await ProxyServer.StartAsync();
        using var client = CreateClient(proxy);
        var body = RandomNumberGenerator.GetBytes(300 * 1024);

        using var get = await client.GetAsync(Url(upstream, scheme, "/hello"));
        var getText = await get.Content.ReadAsStringAsync();
        using var post = await client.PostAsync(Url(upstream, scheme, "/echo?x=1"), new ByteArrayContent(body));
        var echoed = await post.Content.ReadAsByteArrayAsync();
        using var chunkedUpload = new StreamContent(new NonSeekableStream(Encoding.UTF8.GetBytes("sent chunked")));
        using var chunkedPost = await client.PostAsync(Url(upstream, scheme, "/echo?chunked"), chunkedUpload);
        var chunkedEcho = await chunkedPost.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("hello world", getText);
        Assert.Equal("yes", get.Headers.GetValues("X-Upstream").Single());
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.Equal(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), post.Headers.GetValues("X-Received-Length").Single());
        Assert.True(body.AsSpan().SequenceEqual(echoed), "the POST body came back different");

        Assert.Equal("sent chunked", chunkedEcho);

        var getFlow = await EndedFlowAsync(proxy, f => f.Request.Path == "/hello");
        var postFlow = await EndedFlowAsync(proxy, f => f.Request.Path == "/echo?x=1");
        Assert.Equal(("GET", Url(upstream, scheme, "/hello").ToString()), (getFlow.Request.Method, getFlow.Request.Url));
        Assert.Equal(200, getFlow.Response!.StatusCode);
        Assert.Equal("hello world", Encoding.UTF8.GetString(getFlow.Response.Content!));
        Assert.Null(getFlow.Error);
        Assert.Equal(("POST", Url(upstream, scheme, "/echo?x=1").ToString()), (postFlow.Request.Method, postFlow.Request.Url));
        Assert.True(body.AsSpan().SequenceEqual(postFlow.Request.Content), "recorded request body differs");
        Assert.Equal(body.Length, postFlow.Request.ContentLength);
        Assert.Equal(200, postFlow.Response!.StatusCode);
        Assert.Equal(body.Length, postFlow.Response.ContentLength);
        Assert.Equal(scheme == "https", getFlow.ClientConn.TlsEstablished);
        Assert.Equal(scheme == "https", getFlow.ServerConn.TlsEstablished);
        Assert.Equal(scheme == "https", getFlow.ServerConn.CertificateChain.Count > 0);

        // A body-less request is recorded as empty, not as missing (mitmproxy replays only flows with known content).
        Assert.NotNull(getFlow.Request.Content);
        Assert.Empty(getFlow.Request.Content);

        // The POST went out on the connection the GET opened: its flow says which, as the GET's does.
        Assert.NotNull(getFlow.ServerConn.PeerName);
        Assert.Equal(
            (getFlow.ServerConn.Id, getFlow.ServerConn.PeerName, getFlow.ServerConn.SockName, getFlow.ServerConn.TlsEstablished, getFlow.ServerConn.TlsVersion),
            (postFlow.ServerConn.Id, postFlow.ServerConn.PeerName, postFlow.ServerConn.SockName, postFlow.ServerConn.TlsEstablished, postFlow.ServerConn.TlsVersion));

        var chunkedFlow = await EndedFlowAsync(proxy, f => f.Request.Path == "/echo?chunked");
        Assert.Equal("sent chunked", Encoding.UTF8.GetString(chunkedFlow.Request.Content!));

        // Keep-alive: all requests came over the same client connection to the proxy.
        Assert.NotNull(getFlow.ClientConn.PeerName);
        Assert.Equal(getFlow.ClientConn.PeerName, postFlow.ClientConn.PeerName);
        Assert.Equal(getFlow.ClientConn.PeerName, chunkedFlow.ClientConn.PeerName);
    }

    /// <summary>A body stream without a length, so HttpClient sends it chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task ChunkedResponseIsStreamedNotBuffered(string scheme)
    {
        await using var upstream = await StartUpstreamAsync(scheme);
        await using var proxy = await ProxyServer.StartAsync();
        using var client = CreateClient(proxy);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));

        using var response = await client.GetAsync(Url(upstream, scheme, "/stream"), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.TransferEncodingChunked);
        await using var stream = await response.Content.ReadAsStreamAsync(cts.Token);

        // The upstream holds the second chunk back until we have seen the first through the proxy.
        var received = new StringBuilder();
        var buffer = new byte[1024];
        using (var firstChunkTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            while (!received.ToString().Contains("first chunk\n", StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer, firstChunkTimeout.Token);
                Assert.NotEqual(0, read);
                received.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }

        Assert.Equal("first chunk\n", received.ToString());
        upstream.ReleaseStream();
        using var rest = new StreamReader(stream);
        received.Append(await rest.ReadToEndAsync(cts.Token));
        Assert.Equal("first chunk\nsecond chunk\n", received.ToString());

        var flow = await EndedFlowAsync(proxy, f => f.Request.Path == "/stream");
        Assert.Equal(200, flow.Response!.StatusCode);
        Assert.Equal("first chunk\nsecond chunk\n", Encoding.UTF8.GetString(flow.Response.Content!));
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task AClientLeavingADownloadStopsItUpstream_WithoutErrorsInTheLog(string scheme)
    {
        await using var upstream = await StartUpstreamAsync(scheme);
        var log = new ErrorLog();
        await using var proxy = await ProxyServer.StartAsync(services: services => services.AddSingleton<ILoggerProvider>(log));
        using (var client = CreateClient(proxy))
        using (var response = await client.GetAsync(Url(upstream, scheme, "/big"), HttpCompletionOption.ResponseHeadersRead))
        await using (var body = await response.Content.ReadAsStreamAsync())
        {
            await body.ReadExactlyAsync(new byte[1024 * 1024]);
        }

        // The copy stops once the client has gone, instead of draining the upstream into a dead connection.
        var flow = await EndedFlowAsync(proxy, f => f.Request.Path == "/big");
        Assert.Contains("client closed", flow.Error, StringComparison.Ordinal);
        Assert.InRange(flow.Response!.ContentLength, 1024 * 1024, 64L * 1024 * 1024);
        Assert.Equal(200, flow.Response!.StatusCode);
        Assert.Contains("client closed", flow.Error, StringComparison.Ordinal);
        Assert.Empty(log.Errors);
    }

    [Theory]
    [InlineData("untrusted", "is not a trusted CA")]
    [InlineData("wrong-name", "is not valid for localhost")]
    [InlineData("expired", "outside its validity")]
    public async Task AnUpstreamCertificateThatFailsValidationGives502SayingWhy(string problem, string why)
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N"));
        // An expired leaf: the upstream CA issues it as if two years ago (leaves live a year).
        TimeProvider issuedAt = problem == "expired" ? new ShiftedTime(TimeSpan.FromDays(-730)) : TimeProvider.System;
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, issuedAt);
        await using var upstream = await HttpUpstream.StartAsync(upstreamCa.IssueLeaf(problem == "wrong-name" ? "other.example" : "localhost"));
        var bundle = problem == "untrusted" ? null : Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName);
        await using var proxy = await ProxyServer.StartAsync(o => o with { SslInsecure = false, UpstreamTrustBundle = bundle });
        using var client = CreateClient(proxy);

        using var response = await client.GetAsync(upstream.Url("/hello", "https", "localhost"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains(why, body, StringComparison.Ordinal);
        if (bundle is not null)
        {
            // The bundle vouches for the issuer: the refusal is for the name or the dates alone, and a bundle would not help.
            Assert.DoesNotContain("not a trusted CA", body, StringComparison.Ordinal);
            Assert.DoesNotContain("--upstream-trust-bundle", body, StringComparison.Ordinal);
        }

        var flow = await EndedFlowAsync(proxy, f => f.Request.Path == "/hello");
        Assert.Contains(why, flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRecordedServerCertificatesAreWhatTheServerSent_NotTheChainBuiltFromTheTrustBundle()
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N"));
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, TimeProvider.System);
        using var leaf = upstreamCa.IssueLeaf("localhost");
        await using var upstream = await HttpUpstream.StartAsync(leaf);
        await using var proxy = await ProxyServer.StartAsync(o => o with { SslInsecure = false, UpstreamTrustBundle = Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName) });
        using var client = CreateClient(proxy);

        using var response = await client.GetAsync(upstream.Url("/hello", "https", "localhost"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The server sends its leaf alone; the root the bundle supplied is not what it sent (mitmproxy's certificate_list).
        var flow = await EndedFlowAsync(proxy, f => f.Request.Path == "/hello");
        Assert.Equal([leaf.RawData], flow.ServerConn.CertificateChain);
    }

    [Fact]
    public async Task AnUpstreamThatDoesNotSpeakTlsGives502SayingSo_WithoutAdvisingSslInsecure()
    {
        // https:// to a plain HTTP server, with --ssl-insecure on: turning it on again would not help, and it is not
        // the certificate ("Cannot determine the frame size or a corrupted frame was received" was all it said).
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = CreateClient(proxy);

        using var response = await client.GetAsync(upstream.Url("/hello", "https", "localhost"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains($"TLS with localhost:{upstream.Port} failed: the server does not speak TLS", body, StringComparison.Ordinal);
        Assert.DoesNotContain("--ssl-insecure", body, StringComparison.Ordinal);
        var flow = await EndedFlowAsync(proxy, f => f.Request.Path == "/hello");
        Assert.Contains("does not speak TLS", flow.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("web")]
    [InlineData("proxy")]
    public async Task RequestToTheProxysOwnPortIsRefusedWith403AndRecorded(string which)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var client = CreateClient(proxy);
        var port = which == "web" ? proxy.WebPort : proxy.ProxyPort;

        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("own listener", text, StringComparison.Ordinal);
        var flow = await EndedFlowAsync(proxy, f => f.Request.Port == port);
        Assert.Equal("GET", flow.Request.Method);
        Assert.Equal(403, flow.Response!.StatusCode);
        Assert.NotNull(flow.Error);
        Assert.Contains("own listener", flow.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    [InlineData("[::1]")]
    [InlineData("127.1")]
    [InlineData("0.0.0.0")]             // connecting to the unspecified address reaches local listeners
    [InlineData("0")]
    [InlineData("[::]")]
    [InlineData("[::ffff:0.0.0.0]")]
    [InlineData("[::ffff:127.0.0.1]")]
    public async Task ConnectToTheWebPortIsRefusedWith403AndRecorded(string host)
    {
        await using var proxy = await ProxyServer.StartAsync();
        var authority = $"{host}:{proxy.WebPort}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 403", head, StringComparison.Ordinal);
        Assert.Contains("own listener", body, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Method == "CONNECT" && f.Request.Port == proxy.WebPort);
        Assert.NotNull(flow.Error);
        Assert.False(flow.IsLive);
    }

    [Fact]
    public async Task UnreachableHttpUpstreamGives502AndRecordsTheError()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var client = CreateClient(proxy);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{port}/nothing"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains($"could not reach 127.0.0.1:{port}", text, StringComparison.Ordinal);
        var flow = await EndedFlowAsync(proxy, f => f.Request.Port == port);
        Assert.Null(flow.Response);   // no server answered (as in mitmproxy): the error says why
        Assert.Contains("could not reach", flow.Error, StringComparison.Ordinal);
    }

    /// <summary>Collects what is logged at Error or above.</summary>
    private sealed class ErrorLog : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Errors { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(ErrorLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    log.Errors.Enqueue($"{category}: {formatter(state, exception)} {exception?.GetType().Name}: {exception?.Message}");
                }
            }
        }
    }

    private sealed class ShiftedTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + offset;
    }
}
