using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

public sealed class ConnectTlsTests
{
    private static async Task<Stream> ConnectAsync(ProxyServer proxy, string target)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(stream), StringComparison.Ordinal);
        return stream;
    }

    [Fact]
    public async Task AnSniThatIsNoHostNameGetsTheConnectTargetsCertificate()
    {
        await using var proxy = await ProxyServer.StartAsync();
        await using var stream = await ConnectAsync(proxy, "example.test:443");
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        await using var tls = new SslStream(stream, false, ProxyClients.KeepPresented(presented));

        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "bad_name!" });

        Assert.NotNull(presented.Value);
        var leaf = presented.Value;
        Assert.Contains("example.test", leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
    }

    [Fact]
    public async Task TheProxyKeepsServingAfterAClientAbandonsItsTlsHandshake()
    {
        await using var proxy = await ProxyServer.StartAsync();
        await using (var abandoned = await ConnectAsync(proxy, "example.test:443"))
        {
            await abandoned.WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x05, 0x01 });   // half a ClientHello, then gone
        }

        await using var stream = await ConnectAsync(proxy, "example.test:443");
        await using var tls = new SslStream(stream, false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "example.test" });
        Assert.True(tls.IsAuthenticated);
    }

    [Fact]
    public async Task AnIdnSniGetsALeafForItsALabelName()
    {
        // SslStream hands the server the SNI decoded to Unicode; the leaf must name the A-label the client sent.
        await using var proxy = await ProxyServer.StartAsync();
        await using var stream = await ConnectAsync(proxy, "127.0.0.1:443");
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        await using var tls = new SslStream(stream, false, ProxyClients.KeepPresented(presented));

        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "xn--bcher-kva.example" });

        var leaf = presented.Value!;
        Assert.Equal(["xn--bcher-kva.example"], leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
    }

    /// <summary>A GET through a TLS tunnel to an HTTPS upstream for localhost, with <paramref name="sni"/> as the client's SNI.</summary>
    private static async Task<(string Head, HttpFlow Flow)> GetThroughTunnelAsync(ProxyServer proxy, HttpUpstream upstream, string sni)
    {
        await using var stream = await ConnectAsync(proxy, $"localhost:{upstream.Port}");
        await using var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate) || sni.Contains('!', StringComparison.Ordinal));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = sni });
        var path = "/hello?sni=" + Guid.NewGuid().ToString("N");
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost:{upstream.Port}\r\nConnection: close\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(tls);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == path);
        return (head, flow);
    }

    [Fact]
    public async Task An_idn_sni_is_recorded_and_sent_upstream_as_the_a_label_that_went_on_the_wire()
    {
        await using var upstream = await HttpUpstream.StartHttpsAsync();
        await using var proxy = await ProxyServer.StartAsync();

        var (head, flow) = await GetThroughTunnelAsync(proxy, upstream, "xn--bcher-kva.localhost");

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        // SslStream hands the server "bücher.localhost"; mitmproxy records what the client sent.
        Assert.Equal("xn--bcher-kva.localhost", flow.ClientConn.Sni);
        Assert.Equal("xn--bcher-kva.localhost", flow.ServerConn.Sni);
        // A dual-mode socket says [::ffff:127.0.0.1]; the flow says 127.0.0.1, as mitmproxy does.
        Assert.Equal($"127.0.0.1:{upstream.Port}", flow.ServerConn.PeerName);
        Assert.StartsWith("127.0.0.1:", flow.ClientConn.PeerName, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_sni_that_is_no_host_name_serves_the_connect_host_for_the_leaf_and_upstream_alike()
    {
        await using var upstream = await HttpUpstream.StartHttpsAsync();
        await using var proxy = await ProxyServer.StartAsync();

        // The leaf was already for the CONNECT host; every request then failed with "'bad_name!' is not a valid host name".
        var (head, flow) = await GetThroughTunnelAsync(proxy, upstream, "bad_name!");

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Null(flow.ClientConn.Sni);
        Assert.Equal("localhost", flow.ServerConn.Sni);
    }

    [Fact]
    public async Task A_client_that_refuses_the_certificate_is_counted_and_kept_with_why_and_one_that_accepts_it_is_counted()
    {
        await using var proxy = await ProxyServer.StartAsync();
        var handshakes = proxy.Services.GetRequiredService<TlsHandshakeLog>();

        await using (var stream = await ConnectAsync(proxy, "refused.example:443"))
        await using (var tls = new SslStream(stream, false, (_, _, _, _) => false))
        {
            await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "refused.example" }));
        }

        await Eventually.AssertAsync(() => handshakes.Failed == 1, "the failed handshake is counted");
        var failure = Assert.Single(handshakes.Recent());
        Assert.Equal("refused.example", failure.Host);
        Assert.StartsWith("127.0.0.1:", failure.Client, StringComparison.Ordinal);
        // .NET's client closes without an alert; OpenSSL's sends "unknown ca", which reads "does not accept WsWeb's certificate".
        Assert.Equal("the client closed the connection right after the handshake, before any request; a client that does not trust the WsWeb CA often does this", failure.Reason);

        await using (var stream = await ConnectAsync(proxy, "accepted.example:443"))
        await using (var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate)))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "accepted.example" });
            // Counted once the client sends its first request: in TLS 1.3 that is when it has accepted the certificate.
            await tls.WriteAsync("GET /counted HTTP/1.1\r\nHost: accepted.example\r\n\r\n"u8.ToArray());
            await Eventually.AssertAsync(() => handshakes.Succeeded == 1, "the handshake that succeeded is counted");
        }

        Assert.Equal(1, handshakes.Failed);
    }

    [Theory]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, "DHE-RSA-AES128-GCM-SHA256")]
    [InlineData(System.Net.Security.TlsCipherSuite.TLS_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384")]
    public void Cipher_suites_are_named_as_openssl_and_mitmproxy_name_them(System.Net.Security.TlsCipherSuite suite, string expected) =>
        Assert.Equal(expected, TlsNames.Cipher(suite));

    [Fact]
    public async Task A_tls_1_2_client_is_recorded_with_the_openssl_name_of_its_cipher()
    {
        await using var upstream = await HttpUpstream.StartHttpsAsync();
        await using var proxy = await ProxyServer.StartAsync();
        await using var stream = await ConnectAsync(proxy, $"localhost:{upstream.Port}");
        await using var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 });
        var path = "/hello?tls12=" + Guid.NewGuid().ToString("N");
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost:{upstream.Port}\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(tls), StringComparison.Ordinal);

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == path);
        Assert.Equal("TLSv1.2", flow.ClientConn.TlsVersion);
        // The leaf is ECDSA: an ECDHE-ECDSA suite, by OpenSSL's name as in mitmproxy (ECDHE-ECDSA-AES256-GCM-SHA384…).
        Assert.StartsWith("ECDHE-ECDSA-", flow.ClientConn.Cipher, StringComparison.Ordinal);
        Assert.DoesNotContain("_", flow.ClientConn.Cipher, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tls_1_2_client_that_accepted_the_certificate_and_closes_unused_is_no_failure()
    {
        // A browser's preconnect in TLS 1.2: the client checked the certificate before the handshake ended, so a close
        // without a request says nothing against the CA.
        await using var proxy = await ProxyServer.StartAsync();
        var handshakes = proxy.Services.GetRequiredService<TlsHandshakeLog>();
        await using (var stream = await ConnectAsync(proxy, "unused.example:443"))
        await using (var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate)))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "unused.example", EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 });
        }

        // Then a client that is counted, so the close above has surely been seen by now.
        await using (var stream = await ConnectAsync(proxy, "used.example:443"))
        await using (var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate)))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "used.example", EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 });
            await tls.WriteAsync("GET / HTTP/1.1\r\nHost: used.example\r\n\r\n"u8.ToArray());
            await Eventually.AssertAsync(() => handshakes.Succeeded == 1, "the used connection is counted");
        }

        Assert.Equal(0, handshakes.Failed);
        Assert.Empty(handshakes.Recent());
    }

    [RequiresToolFact(ExternalTools.Mitmdump)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // CipherSuitesPolicy; mitmdump runs where this does
    public async Task Under_mitmproxys_rsa_ca_a_client_that_accepts_only_rsa_suites_connects()
    {
        // The real mitmdump makes its CA in a fresh confdir; WsWeb started on that directory uses it.
        var confdir = await ExternalTools.MitmproxyConfdirAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { DataDirectory = confdir });

        await using var stream = await ConnectAsync(proxy, "rsa-only.example:443");
        await using var tls = new SslStream(stream, false, (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "rsa-only.example",
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12,
            CipherSuitesPolicy = new CipherSuitesPolicy([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]),
        });

        Assert.Equal(TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.NegotiatedCipherSuite);
    }
}
