using System.Net;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Certificates;

/// <summary>A server whose issuer is in the trust bundle but whose certificate is wrong otherwise: refused, for that reason only.</summary>
public sealed class TrustBundleRefusalTests
{
    [Theory]
    [InlineData("wrong-name", "is not valid for localhost")]
    [InlineData("expired", "outside its validity")]
    public async Task TheRefusalDoesNotCallTheBundlesCAUntrusted(string problem, string why)
    {
        var caDirectory = Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N"));
        TimeProvider issuedAt = problem == "expired" ? new ShiftedTime(TimeSpan.FromDays(-730)) : TimeProvider.System;
        using var upstreamCa = CertificateAuthority.LoadOrCreate(caDirectory, issuedAt);
        await using var upstream = await HttpUpstream.StartAsync(upstreamCa.IssueLeaf(problem == "wrong-name" ? "other.example" : "localhost"));
        var bundle = Path.Combine(caDirectory, CertificateAuthority.CertificatePemFileName);
        await using var proxy = await ProxyServer.StartAsync(o => o with { SslInsecure = false, UpstreamTrustBundle = bundle });
        using var client = new HttpClient(new SocketsHttpHandler
        {
            Proxy = new WebProxy(proxy.ProxyUri),
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => ProxyClients.ChainsTo(certificate, proxy.CaCertificate) },
        });

        using var response = await client.GetAsync(upstream.Url("/hello", "https", "localhost"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains(why, body, StringComparison.Ordinal);
        Assert.DoesNotContain("not a trusted CA", body, StringComparison.Ordinal);
        Assert.DoesNotContain("--upstream-trust-bundle", body, StringComparison.Ordinal);
    }

    private sealed class ShiftedTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + offset;
    }
}
