using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// A client that resolved a name itself tunnels to an IP and asks for the name in its TLS handshake (SNI):
/// the server must be asked for that name too, as mitmproxy does, or name-based virtual hosts answer wrongly.
/// </summary>
public sealed class UpstreamServerNameTests
{
    [Fact]
    public async Task ATunnelToAnIpAsksTheServerForTheClientsSni_AndChecksItsCertificateAgainstThatName()
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-sni-" + Guid.NewGuid().ToString("N"));
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, TimeProvider.System);
        await using var upstream = await StartVirtualHostsAsync(upstreamCa);
        var port = LoopbackWebApp.Port(upstream);
        await using var proxy = await ProxyServer.StartAsync(o => o with
        {
            SslInsecure = false,
            UpstreamTrustBundle = Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName),
        });

        // a, b, then a again: each name keeps to connections opened for it, though all go to one IP and port.
        Assert.Equal("served a.test", await GetThroughTunnelAsync(proxy, port, "a.test"));
        Assert.Equal("served b.test", await GetThroughTunnelAsync(proxy, port, "b.test"));
        Assert.Equal("served a.test", await GetThroughTunnelAsync(proxy, port, "a.test"));

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Headers["Host"] == "b.test" && f.Response is not null);
        Assert.Equal("b.test", flow.ServerConn.Sni);
        Assert.Equal($"127.0.0.1:{port}", flow.ServerConn.Address);
        Assert.Equal("127.0.0.1", flow.Request.Host);
    }

    [Fact]
    public async Task TheServerCertificateMustStillMatchTheNameAsked()
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-sni-" + Guid.NewGuid().ToString("N"));
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, TimeProvider.System);
        await using var upstream = await StartVirtualHostsAsync(upstreamCa, wrongNameFor: "c.test");
        await using var proxy = await ProxyServer.StartAsync(o => o with
        {
            SslInsecure = false,
            UpstreamTrustBundle = Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName),
        });

        var answer = await GetThroughTunnelAsync(proxy, LoopbackWebApp.Port(upstream), "c.test", wholeResponse: true);

        Assert.StartsWith("HTTP/1.1 502", answer, StringComparison.Ordinal);
        Assert.Contains("is not valid for c.test", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARequestWithoutAHostHeaderGetsTheTunnelsAuthority_AndAnIpv6AddressKeepsItsBrackets()
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-sni-" + Guid.NewGuid().ToString("N"));
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, TimeProvider.System);
        await using var upstream = await StartVirtualHostsAsync(upstreamCa, address: IPAddress.IPv6Loopback);
        var port = LoopbackWebApp.Port(upstream);
        await using var proxy = await ProxyServer.StartAsync(o => o with
        {
            SslInsecure = false,
            UpstreamTrustBundle = Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName),
        });

        // HTTP/1.0 needs no Host: HttpClient writes one from the request URI, whose host is only a pool key here.
        var answer = await GetThroughTunnelAsync(proxy, port, "a.test", wholeResponse: true, connectHost: "[::1]", request: "GET /host HTTP/1.0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.EndsWith($"host [::1]:{port}", answer, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/host" && f.Response is not null);
        Assert.Equal($"[::1]:{port}", flow.ServerConn.Address);
        Assert.Equal("a.test", flow.ServerConn.Sni);
    }

    /// <summary>An HTTPS server with one certificate per SNI name, answering with the name its connection was opened for.</summary>
    private static async Task<WebApplication> StartVirtualHostsAsync(CertificateAuthority ca, string? wrongNameFor = null, IPAddress? address = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(address ?? IPAddress.Loopback, 0, listen => listen.UseHttps(https =>
            https.ServerCertificateSelector = (_, name) => ca.IssueLeaf(name is null ? "default.test" : name == wrongNameFor ? "other.test" : name))));
        var app = builder.Build();
        app.MapGet("/", (HttpContext context) => $"served {context.Features.Get<ITlsHandshakeFeature>()?.HostName}");
        app.MapGet("/host", (HttpContext context) => $"host {context.Request.Headers.Host}");
        await app.StartAsync();
        return app;
    }

    private static async Task<string> GetThroughTunnelAsync(
        ProxyServer proxy, int port, string serverName, bool wholeResponse = false, string connectHost = "127.0.0.1", string? request = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort, timeout.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {connectHost}:{port} HTTP/1.1\r\nHost: {connectHost}:{port}\r\n\r\n"), timeout.Token);
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(stream), StringComparison.Ordinal);

        await using var tls = new SslStream(stream);
        await tls.AuthenticateAsClientAsync(Certificates.LoopbackTls.TrustOnly(proxy.CaCertificate, serverName), timeout.Token);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request ?? $"GET / HTTP/1.1\r\nHost: {serverName}\r\nConnection: close\r\n\r\n"), timeout.Token);
        using var response = new MemoryStream();
        await tls.CopyToAsync(response, timeout.Token);
        var text = Encoding.UTF8.GetString(response.ToArray());
        // The body is chunked: its one chunk is the line after the size line.
        return wholeResponse ? text : text.Split("\r\n")[^4];
    }
}
