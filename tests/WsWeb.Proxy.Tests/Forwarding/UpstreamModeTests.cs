using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// Upstream mode (mitmproxy's --mode upstream:URL): WsWeb reaches servers through another proxy. The other proxy is a
/// second WsWeb, which records what it relays, or a raw one that shows the CONNECT it got.
/// </summary>
public sealed class UpstreamModeTests
{
    private static Task<ProxyServer> ThroughAsync(int upstreamPort, string? credentials = null, string[]? ignoreHosts = null) =>
        ProxyServer.StartAsync(o => o with { Upstream = new UpstreamProxy("127.0.0.1", upstreamPort, credentials), IgnoreHosts = ignoreHosts ?? [] });

    [Fact]
    public async Task A_websocket_goes_through_the_upstream_proxy_and_both_record_it()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var outer = await ProxyServer.StartAsync();
        await using var proxy = await ThroughAsync(outer.ProxyPort);
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync("two proxies"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("two proxies", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));

        var mine = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        var theirs = await outer.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal($"127.0.0.1:{echo.Port}", mine.ServerConn.Address);
        Assert.Equal($"127.0.0.1:{outer.ProxyPort}", mine.ServerConn.PeerName);   // the upstream proxy's socket (IPv4, though the socket is dual-mode)
        Assert.Equal(echo.Port, theirs.Request.Port);
        await Eventually.AssertAsync(() => theirs.WebSocket!.Messages.Count == 2, "the outer proxy saw the message and its echo");
    }

    [Fact]
    public async Task Wss_and_plain_http_go_through_it_too()
    {
        using var serverCa = CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(serverCa.IssueLeaf("localhost"));
        await using var upstream = await HttpUpstream.StartAsync();
        await using var outer = await ProxyServer.StartAsync();
        await using var proxy = await ThroughAsync(outer.ProxyPort);

        using (var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WssUri()))
        {
            await client.SendAsync("over tls"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal("over tls", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));
        }

        using var http = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(proxy.ProxyUri) });
        Assert.False(string.IsNullOrEmpty(await http.GetStringAsync(upstream.Url("/hello"))));

        var tls = await outer.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.True(tls.ClientConn.TlsEstablished);
        await outer.WaitForFlowAsync(f => f.Request.Path == "/hello" && f.Response?.StatusCode == 200);
    }

    [Fact]
    public async Task The_credentials_go_as_basic_proxy_authorization_and_a_refusal_is_a_502_quoting_it()
    {
        using var fake = new TcpListener(IPAddress.Loopback, 0);
        fake.Start();
        await using var proxy = await ThroughAsync(((IPEndPoint)fake.LocalEndpoint).Port, credentials: "al@ice:s3cret");
        using var http = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy(proxy.ProxyUri) });

        var answering = AnswerAsync(fake, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
        using var refused = await http.GetAsync(new Uri("http://example.invalid:81/"));
        var connect = await answering;

        Assert.StartsWith("CONNECT example.invalid:81 HTTP/1.1\r\n", connect, StringComparison.Ordinal);
        Assert.Contains($"Proxy-Authorization: Basic {Convert.ToBase64String("al@ice:s3cret"u8.ToArray())}\r\n", connect, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        Assert.Contains("answered the CONNECT to example.invalid:81 with 'HTTP/1.1 407 Proxy Authentication Required'", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_passed_through_tunnel_goes_through_the_upstream_proxy()
    {
        using var serverCa = CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(serverCa.IssueLeaf("localhost"));
        await using var outer = await ProxyServer.StartAsync();
        await using var proxy = await ThroughAsync(outer.ProxyPort, ignoreHosts: ["."]);
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        using var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.RemoteCertificateValidationCallback = ProxyClients.KeepPresented(presented);
        await client.ConnectAsync(echo.WssUri(), CancellationToken.None);
        await client.SendAsync("hi"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await ProxyClients.ReceiveMessageAsync(client);

        // Untouched by this WsWeb (nothing recorded), intercepted by the outer one, whose certificate the client saw.
        Assert.True(ProxyClients.ChainsTo(presented.Value, outer.CaCertificate));
        Assert.Empty(proxy.Store.Snapshot());
        await outer.WaitForFlowAsync(f => f.IsWebSocket);
    }

    /// <summary>Reads one CONNECT head on <paramref name="listener"/>, answers it, and returns the head.</summary>
    private static async Task<string> AnswerAsync(TcpListener listener, string answer)
    {
        using var connection = await listener.AcceptTcpClientAsync();
        var stream = connection.GetStream();
        var head = await ProxyClients.ReadHeadAsync(stream);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(answer));
        return head;
    }
}
