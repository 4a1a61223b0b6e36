using System.Net.Security;
using System.Security.Authentication;
using WsWeb.Proxy.Certificates;

namespace WsWeb.Proxy.Tests.Certificates;

/// <summary>
/// The upstream is a loopback TLS server with a leaf from a CA no system store knows, i.e. what a
/// self-signed development server looks like to the proxy.
/// </summary>
public sealed class UpstreamTlsPolicyTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly CertificateAuthority _upstreamCa;

    public UpstreamTlsPolicyTests() => _upstreamCa = CertificateAuthority.LoadOrCreate(_temp.Combine("upstream"), TimeProvider.System);

    public void Dispose()
    {
        _upstreamCa.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Default_policy_rejects_an_upstream_the_system_does_not_trust()
    {
        using var policy = new UpstreamTlsPolicy();

        Assert.False(policy.Insecure);
        await Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(policy, "localhost"));
    }

    [Fact]
    public async Task Insecure_policy_accepts_it()
    {
        using var policy = new UpstreamTlsPolicy(new UpstreamTlsOptions { Insecure = true });

        using var seen = await HandshakeAsync(policy, "localhost");
        Assert.Equal(_upstreamCa.Certificate.Subject, seen.Issuer);
    }

    [Fact]
    public async Task Insecure_policy_accepts_even_a_name_mismatch()
    {
        using var policy = new UpstreamTlsPolicy(insecure: true);

        using var seen = await HandshakeAsync(policy, "localhost", servedHost: "elsewhere.example");
    }

    [Fact]
    public async Task Trust_bundle_with_its_CA_accepts_it_for_names_and_addresses()
    {
        var bundle = WriteBundle(_upstreamCa);
        using var policy = new UpstreamTlsPolicy(insecure: false, trustBundlePath: bundle);

        using (await HandshakeAsync(policy, "localhost"))
        using (await HandshakeAsync(policy, "127.0.0.1"))
        {
        }
    }

    [Fact]
    public async Task Trust_bundle_does_not_excuse_a_name_mismatch()
    {
        using var policy = new UpstreamTlsPolicy(insecure: false, trustBundlePath: WriteBundle(_upstreamCa));

        await Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(policy, "localhost", servedHost: "elsewhere.example"));
    }

    [Fact]
    public async Task Trust_bundle_without_its_CA_still_rejects_it()
    {
        using var unrelated = CertificateAuthority.LoadOrCreate(_temp.Combine("unrelated"), TimeProvider.System);
        using var policy = new UpstreamTlsPolicy(insecure: false, trustBundlePath: WriteBundle(unrelated));

        await Assert.ThrowsAsync<AuthenticationException>(() => HandshakeAsync(policy, "localhost"));
    }

    [Fact]
    public void Trust_bundle_may_hold_several_certificates()
    {
        using var second = CertificateAuthority.LoadOrCreate(_temp.Combine("second"), TimeProvider.System);
        var path = _temp.Combine("bundle.pem");
        File.WriteAllBytes(path, [.. _upstreamCa.ExportPem(), .. second.ExportPem()]);

        using var policy = new UpstreamTlsPolicy(insecure: false, trustBundlePath: path);

        Assert.Equal(2, policy.TrustBundle.Count);
    }

    [Fact]
    public void Unusable_trust_bundle_fails_with_its_name()
    {
        var missing = _temp.Combine("missing.pem");
        Assert.Equal(missing, Assert.Throws<CertificateFileException>(() => new UpstreamTlsPolicy(false, missing)).FilePath);

        var empty = _temp.Combine("empty.pem");
        File.WriteAllText(empty, "no certificates here\n");
        Assert.Equal(empty, Assert.Throws<CertificateFileException>(() => new UpstreamTlsPolicy(false, empty)).FilePath);

        var corrupt = _temp.Combine("corrupt.pem");
        File.WriteAllText(corrupt, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        Assert.Equal(corrupt, Assert.Throws<CertificateFileException>(() => new UpstreamTlsPolicy(false, corrupt)).FilePath);
    }

    [Fact]
    public void Options_carry_the_target_host_normalised_and_the_callback()
    {
        using var policy = new UpstreamTlsPolicy();
        List<SslApplicationProtocol> alpn = [SslApplicationProtocol.Http11];

        var options = policy.CreateOptions("[::1]", alpn);

        Assert.Equal("::1", options.TargetHost);
        Assert.Same(alpn, options.ApplicationProtocols);
        Assert.NotNull(options.RemoteCertificateValidationCallback);
        Assert.Equal("example.com", policy.CreateOptions("Example.com.").TargetHost);
    }

    private string WriteBundle(CertificateAuthority ca)
    {
        var path = _temp.Combine(Guid.NewGuid().ToString("N") + ".pem");
        File.WriteAllBytes(path, ca.ExportPem());
        return path;
    }

    private Task<System.Security.Cryptography.X509Certificates.X509Certificate2> HandshakeAsync(UpstreamTlsPolicy policy, string targetHost, string? servedHost = null) =>
        LoopbackTls.HandshakeAsync(
            _ => _upstreamCa.GetServerContext(servedHost ?? targetHost),
            servedHost ?? targetHost,
            policy.CreateOptions(targetHost));
}
