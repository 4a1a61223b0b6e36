using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Hosting;
using WsWeb.Proxy;
using WsWeb.Proxy.Listener;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>The real host: both Kestrel listeners on loopback, CA created on first start.</summary>
public sealed class HostTests : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-host-" + Guid.NewGuid().ToString("N"));
    private WebApplication _app = null!;
    private int _proxyPort;
    private int _webPort;

    public async Task InitializeAsync()
    {
        _app = WsWebHost.Build(new ProxyOptions { ListenPort = 0, WebPort = 0, DataDirectory = _dataDirectory });
        await _app.StartAsync();
        var own = _app.Services.GetRequiredService<OwnEndpoints>();
        _proxyPort = Assert.Single(own.Proxy).Port;
        _webPort = Assert.Single(own.Web).Port;
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    [Fact]
    public async Task The_ready_line_of_a_reverse_proxy_says_where_it_sends_clients()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-reverse-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var wsweb = await WsWebProcess.StartAsync(["--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory, "--mode", "reverse:wss://echo.example"]);
            var ready = await wsweb.WaitForLineAsync(line => line.Contains("WsWeb is ready.", StringComparison.Ordinal), "the ready line");

            Assert.Contains($"Proxy: 127.0.0.1:{wsweb.ProxyPort} (a reverse proxy to https://echo.example: point clients at it instead of the server; also an HTTP proxy)", ready, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task A_client_that_resets_right_after_the_connect_answer_is_no_error_in_the_log()
    {
        // The real process: its console shows what an operator would see (Kestrel's "fail: … Unhandled exception").
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-reset-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var wsweb = await WsWebProcess.StartAsync(["--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory]);
            await wsweb.WaitForLineAsync(line => line.Contains("WsWeb is ready.", StringComparison.Ordinal), "the ready line");
            for (var i = 0; i < 3; i++)
            {
                using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await socket.ConnectAsync(System.Net.IPAddress.Loopback, wsweb.ProxyPort);
                await socket.SendAsync("CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n"u8.ToArray());
                var answer = new byte[99];
                Assert.True(await socket.ReceiveAsync(answer) > 0);
                socket.LingerState = new System.Net.Sockets.LingerOption(true, 0);   // close with a reset
                socket.Close();
            }

            // The old code logged each reset at once; a second is plenty to see one.
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.DoesNotContain(wsweb.Lines, line => line.Contains("fail:", StringComparison.Ordinal) || line.Contains("Unhandled exception", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task HealthAndCaDownloadsAreServedOnTheWebPort()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_webPort}") };

        var health = await http.GetStringAsync("/healthz");
        var pem = await http.GetStringAsync("/cert/pem");
        var cer = await http.GetByteArrayAsync("/cert/cer");
        var p12 = await http.GetByteArrayAsync("/cert/p12");

        Assert.Contains("\"status\":\"ok\"", health, StringComparison.Ordinal);

        // Started with port 0 for both: the report gives the ports picked, not 0.
        Assert.Contains($"\"proxyPort\":{_proxyPort},\"webPort\":{_webPort}", health, StringComparison.Ordinal);
        var fromPem = X509Certificate2.CreateFromPem(pem);
        var fromCer = X509CertificateLoader.LoadCertificate(cer);
        Assert.Equal(fromPem.Thumbprint, fromCer.Thumbprint);
        var fromP12 = X509CertificateLoader.LoadPkcs12Collection(p12, password: null);
        Assert.Equal(fromPem.Thumbprint, Assert.Single(fromP12).Thumbprint);
        Assert.False(fromP12[0].HasPrivateKey);
        Assert.True(fromPem.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
    }

    [Fact]
    public async Task TheStartLogSaysWhichPortIsTheProxyAndWhichTheDashboard()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-ready-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var wsweb = await WsWebProcess.StartAsync(["--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory]);
            var ready = await wsweb.WaitForLineAsync(line => line.Contains("WsWeb is ready.", StringComparison.Ordinal), "the ready line");

            Assert.Contains($"Proxy: 127.0.0.1:{wsweb.ProxyPort} (", ready, StringComparison.Ordinal);
            Assert.Contains($"Dashboard and REST API: http://127.0.0.1:{wsweb.WebPort}/", ready, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public void TheCaKeyIsOwnerOnly()
    {
        var keyFile = Path.Combine(_dataDirectory, "wsweb-ca.pem");

        Assert.True(File.Exists(keyFile));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        }
    }

    [Fact]
    public async Task TheProxyRefusesToReachTheDashboard()
    {
        using var handler = new HttpClientHandler { Proxy = new WebProxy($"http://127.0.0.1:{_proxyPort}"), UseProxy = true };
        using var viaProxy = new HttpClient(handler);

        using var response = await viaProxy.GetAsync(new Uri($"http://127.0.0.1:{_webPort}/healthz"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("own listener", body, StringComparison.Ordinal);
        var store = _app.Services.GetRequiredService<WsWeb.Core.Flows.FlowStore>();
        Assert.Contains(store.Snapshot(), f => f.Error?.Contains("own listener", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task AForeignHostHeaderIsRefusedSoDnsRebindingCannotReadTheApi()
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_webPort}/api/flows");
        request.Headers.Host = "evil.attacker.example";

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("evil.attacker.example", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var local = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_webPort}/api/flows");
        local.Headers.Host = $"localhost:{_webPort}";
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(local)).StatusCode);
    }

    [Fact]
    public async Task TheProxyForwardsToHostsTheDashboardDoesNotAnswerTo()
    {
        // 127.0.0.2 is loopback too, but not one of the web listener's names: only the dashboard checks Host.
        var elsewhere = IPAddress.Parse("127.0.0.2");
        await using var server = await EchoPeer.StartAsync(elsewhere);
        await using var client = await ClientPeer.ConnectAsync(new Uri($"http://127.0.0.1:{_proxyPort}"), new Uri($"ws://{elsewhere}:{server.Port}/echo?c=far"), "far");

        await client.SendTextAsync("hello over there");

        Assert.Equal("hello over there", await client.ReceiveTextAsync());
        var store = _app.Services.GetRequiredService<WsWeb.Core.Flows.FlowStore>();
        Assert.Contains(store.Snapshot(), f => f.IsWebSocket && f.Request.Host == "127.0.0.2");
    }

    [Fact]
    public async Task CrossSiteWritesAndHubConnectionsAreRefused()
    {
        using var http = new HttpClient();
        using var foreign = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_webPort}/api/flows/import") { Content = new StringContent("{}") };
        foreign.Headers.Add("Origin", "http://evil.example");
        using var sameSite = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_webPort}/api/flows/import") { Content = new StringContent("not a capture") };
        sameSite.Headers.Add("Origin", $"http://127.0.0.1:{_webPort}");

        using var refused = await http.SendAsync(foreign);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(sameSite)).StatusCode);   // past the guard, refused as a bad file

        using var hub = new System.Net.WebSockets.ClientWebSocket();
        hub.Options.SetRequestHeader("Origin", "http://evil.example");
        await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => hub.ConnectAsync(new Uri($"ws://127.0.0.1:{_webPort}/hubs/flows"), CancellationToken.None));
    }

    [Fact]
    public async Task TheWebPortDoesNotProxy()
    {
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_webPort}/nothing-here"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task TheProxyRunsOnItsOwnTransport_AndTheWebPortOnKestrelsSockets()
    {
        var transport = _app.Services.GetServices<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>().OfType<ProxyTransportFactory>().Single();
        var before = transport.Accepted;

        using var http = new HttpClient();
        using (await http.GetAsync(new Uri($"http://127.0.0.1:{_webPort}/healthz")))
        {
        }

        Assert.Equal(before, transport.Accepted);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _proxyPort);
        await Eventually.AssertAsync(() => transport.Accepted == before + 1, "the proxy connection accepted by the proxy transport");
    }
}
