using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using WsWeb.Proxy.Certificates;

namespace WsWeb.Proxy.Tests.Certificates;

/// <summary>Leaves served through <see cref="CertificateAuthority.GetServerContext"/> to a real SslStream client over loopback.</summary>
public sealed class TlsHandshakeTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly CertificateAuthority _ca;

    public TlsHandshakeTests() => _ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);

    public void Dispose()
    {
        _ca.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Client_trusting_only_our_CA_completes_a_handshake_for_a_DNS_name_via_SNI()
    {
        var seen = await LoopbackTls.HandshakeAsync(_ca.GetServerContext, "fallback.invalid", LoopbackTls.TrustOnly(_ca.Certificate, "example.com"));

        using (seen)
        {
            var san = Assert.Single(seen.Extensions.OfType<X509SubjectAlternativeNameExtension>());
            Assert.Equal(["example.com"], san.EnumerateDnsNames());
        }
    }

    [Fact]
    public async Task Client_trusting_only_our_CA_completes_a_handshake_for_an_IPv4_address()
    {
        // No SNI is sent for an IP target: the server falls back to the CONNECT host.
        var seen = await LoopbackTls.HandshakeAsync(_ca.GetServerContext, "127.0.0.1", LoopbackTls.TrustOnly(_ca.Certificate, "127.0.0.1"));

        using (seen)
        {
            var san = Assert.Single(seen.Extensions.OfType<X509SubjectAlternativeNameExtension>());
            Assert.Equal([IPAddress.Loopback], san.EnumerateIPAddresses());
        }
    }

    [Fact]
    public async Task Client_trusting_only_our_CA_completes_a_handshake_for_an_IPv6_address()
    {
        var seen = await LoopbackTls.HandshakeAsync(_ca.GetServerContext, "[::1]", LoopbackTls.TrustOnly(_ca.Certificate, "::1"));

        seen.Dispose();
    }

    [Fact]
    public async Task Handshake_fails_when_the_leaf_names_another_host()
    {
        await Assert.ThrowsAsync<AuthenticationException>(() =>
            LoopbackTls.HandshakeAsync(_ => _ca.GetServerContext("example.org"), "example.org", LoopbackTls.TrustOnly(_ca.Certificate, "example.com")));
    }

    [Fact]
    public async Task Handshake_fails_for_a_client_that_trusts_another_CA()
    {
        using var other = CertificateAuthority.LoadOrCreate(_temp.Combine("other"), TimeProvider.System);

        await Assert.ThrowsAsync<AuthenticationException>(() =>
            LoopbackTls.HandshakeAsync(_ca.GetServerContext, "example.com", LoopbackTls.TrustOnly(other.Certificate, "example.com")));
    }
}
