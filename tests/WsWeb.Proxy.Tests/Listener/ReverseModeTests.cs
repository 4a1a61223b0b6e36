using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>
/// Reverse-proxy mode (mitmproxy's --mode reverse:URL): clients that use no proxy connect to WsWeb as to the server,
/// in plain or TLS, and WsWeb relays to the server it was given.
/// </summary>
public sealed class ReverseModeTests
{
    private static Task<ProxyServer> ReverseToAsync(string url) =>
        ProxyServer.StartAsync(o => o with { Reverse = ReverseTarget.TryParse(url, out var target, out var error) ? target : throw new ArgumentException(error) });

    [Fact]
    public async Task A_websocket_client_without_a_proxy_reaches_the_server_through_ws()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ReverseToAsync($"ws://127.0.0.1:{echo.Port}");
        using var client = new ClientWebSocket();
        await client.ConnectAsync(new Uri($"ws://127.0.0.1:{proxy.ProxyPort}/echo?x=1"), CancellationToken.None);

        await client.SendAsync("through the reverse proxy"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);
        Assert.Equal("through the reverse proxy", Encoding.UTF8.GetString(echoed.Data));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal($"ws://127.0.0.1:{echo.Port}/echo?x=1", flow.Request.WebSocketUrl);

        // The server is told it was addressed, not WsWeb (mitmproxy's keep_host_header off).
        Assert.Equal($"127.0.0.1:{echo.Port}", flow.Request.Headers["Host"]);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 2, "the message and its echo");
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task A_client_speaking_tls_to_wsweb_gets_a_leaf_from_its_ca_and_wsweb_speaks_tls_to_the_server()
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(upstreamCa.IssueLeaf("localhost"));
        await using var proxy = await ReverseToAsync($"wss://localhost:{echo.Port}");
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        using var client = new ClientWebSocket();
        client.Options.RemoteCertificateValidationCallback = ProxyClients.KeepPresented(presented);
        await client.ConnectAsync(new Uri($"wss://localhost:{proxy.ProxyPort}/echo"), CancellationToken.None);

        await client.SendAsync("tls both ways"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("tls both ways", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));
        Assert.True(ProxyClients.ChainsTo(presented.Value, proxy.CaCertificate));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.True(flow.ClientConn.TlsEstablished);
        Assert.Equal("localhost", flow.ClientConn.Sni);
        Assert.True(flow.ServerConn.TlsEstablished);
        Assert.Equal("https", flow.Request.Scheme);
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task A_client_that_addresses_wsweb_by_ip_gets_a_leaf_for_that_address()
    {
        // No SNI for an address (RFC 6066): the leaf must name the address the client connected to, not the server's name.
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ReverseToAsync($"ws://localhost:{echo.Port}");
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        using var client = new ClientWebSocket();
        client.Options.RemoteCertificateValidationCallback = ProxyClients.KeepPresented(presented);
        await client.ConnectAsync(new Uri($"wss://127.0.0.1:{proxy.ProxyPort}/echo"), CancellationToken.None);

        var leaf = presented.Value!;
        Assert.Equal([IPAddress.Loopback], leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses());
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task A_plain_client_reaches_an_https_server_and_plain_http_is_relayed_too()
    {
        await using var upstream = await HttpUpstream.StartHttpsAsync();
        await using var proxy = await ReverseToAsync($"https://localhost:{upstream.Port}");
        using var http = new HttpClient();

        var hello = await http.GetStringAsync(new Uri($"http://127.0.0.1:{proxy.ProxyPort}/hello"));

        Assert.False(string.IsNullOrEmpty(hello));
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/hello" && !f.IsLive);
        Assert.Equal($"https://localhost:{upstream.Port}/hello", flow.Request.Url);
        Assert.Equal(200, flow.Response!.StatusCode);
        Assert.True(flow.ServerConn.TlsEstablished);
    }

    [Fact]
    public async Task It_is_still_a_regular_proxy_for_absolute_form_and_connect()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var other = await EchoServer.StartAsync();
        await using var proxy = await ReverseToAsync($"ws://127.0.0.1:{echo.Port}");

        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, other.WsUri());
        await client.SendAsync("to the other"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await ProxyClients.ReceiveMessageAsync(client);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal(other.Port, flow.Request.Port);
        Assert.True(other.Frames.Count == 1 && echo.Frames.IsEmpty);
    }

    [Fact]
    public async Task A_reverse_target_that_is_wsweb_itself_is_refused_and_recorded()
    {
        int webPort;
        using (var free = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            free.Start();
            webPort = ((IPEndPoint)free.LocalEndpoint).Port;
        }

        await using var proxy = await ProxyServer.StartAsync(o => o with { WebPort = webPort, Reverse = new ReverseTarget("http", "127.0.0.1", webPort) });
        using var http = new HttpClient();

        using var answer = await http.GetAsync(new Uri($"http://127.0.0.1:{proxy.ProxyPort}/healthz"));

        Assert.Equal(HttpStatusCode.Forbidden, answer.StatusCode);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/healthz" && !f.IsLive);
        Assert.Contains("own listener", flow.Error, StringComparison.Ordinal);
    }
}
