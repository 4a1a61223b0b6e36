using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
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
}
