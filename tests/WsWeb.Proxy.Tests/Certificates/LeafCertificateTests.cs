using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using WsWeb.Proxy.Certificates;
using WsWeb.Tests.Shared;
using Xunit.Abstractions;

namespace WsWeb.Proxy.Tests.Certificates;

public sealed class LeafCertificateTests(ITestOutputHelper output) : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _temp = new();
    private readonly ManualTimeProvider _clock = new(Start);
    private CertificateAuthority? _ca;

    private CertificateAuthority Ca => _ca ??= CertificateAuthority.LoadOrCreate(_temp.Root, _clock);

    public void Dispose()
    {
        _ca?.Dispose();
        _temp.Dispose();
    }

    [Theory]
    [InlineData("example.com", "example.com")]
    [InlineData("Example.COM.", "example.com")]
    [InlineData("  ws.Sub-Domain.example.org  ", "ws.sub-domain.example.org")]
    [InlineData("_dmarc.example.com", "_dmarc.example.com")]
    [InlineData("localhost", "localhost")]
    [InlineData("bücher.example", "xn--bcher-kva.example")]
    [InlineData("Bücher.Example.", "xn--bcher-kva.example")]
    public void Host_names_get_one_lower_case_DNS_SAN(string host, string expected)
    {
        using var leaf = Ca.IssueLeaf(host);
        var san = Assert.Single(leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>());

        Assert.Equal([expected], san.EnumerateDnsNames());
        Assert.Empty(san.EnumerateIPAddresses());
        Assert.Equal(expected, leaf.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        Assert.True(ChainsToCa(leaf));
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("127.0.0.1.", "127.0.0.1")]
    [InlineData("::1", "::1")]
    [InlineData("[::1]", "::1")]
    [InlineData("2001:DB8:0:0:0:0:0:1", "2001:db8::1")]
    [InlineData("fe80::1%2", "fe80::1")]
    public void IP_literals_get_one_IP_SAN(string host, string expected)
    {
        using var leaf = Ca.IssueLeaf(host);
        var san = Assert.Single(leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>());

        Assert.Equal([IPAddress.Parse(expected)], san.EnumerateIPAddresses());
        Assert.Empty(san.EnumerateDnsNames());
        Assert.True(ChainsToCa(leaf));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("*.example.com")]
    [InlineData("exa mple.com")]
    [InlineData("example..com")]
    [InlineData("-example.com")]
    [InlineData("bü cher.example")]
    [InlineData("1::2::3")]
    public void Invalid_hosts_are_rejected(string host)
    {
        Assert.Throws<ArgumentException>(() => Ca.IssueLeaf(host));
        Assert.Throws<ArgumentException>(() => Ca.GetServerContext(host));
    }

    [Fact]
    public void Leaf_is_a_server_certificate_issued_by_the_CA_with_its_own_P256_key()
    {
        using var leaf = Ca.IssueLeaf("example.com");

        Assert.True(leaf.HasPrivateKey);
        Assert.Equal(Ca.Certificate.SubjectName.RawData, leaf.IssuerName.RawData);
        using (var key = leaf.GetECDsaPrivateKey())
        {
            Assert.NotNull(key);
            Assert.Equal(256, key.KeySize);
        }

        var usage = Assert.Single(leaf.Extensions.OfType<X509KeyUsageExtension>());
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        var eku = Assert.Single(leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Equal(["1.3.6.1.5.5.7.3.1"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value));
        Assert.False(Assert.Single(leaf.Extensions.OfType<X509BasicConstraintsExtension>()).CertificateAuthority);

        var aki = Assert.Single(leaf.Extensions.OfType<X509AuthorityKeyIdentifierExtension>());
        var caSki = Assert.Single(Ca.Certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>());
        Assert.Equal(caSki.SubjectKeyIdentifierBytes.ToArray(), aki.KeyIdentifier!.Value.ToArray());

        using var other = Ca.IssueLeaf("example.com");
        Assert.NotEqual(leaf.SerialNumber, other.SerialNumber);
        Assert.NotEqual(leaf.GetPublicKey(), other.GetPublicKey());
    }

    [Fact]
    public void Leaf_validity_allows_clock_skew_and_never_outlives_the_CA()
    {
        var caNotAfter = new DateTimeOffset(Ca.Certificate.NotAfter.ToUniversalTime());

        _clock.Now = Start.AddDays(100);
        using (var leaf = Ca.IssueLeaf("example.com"))
        {
            Assert.Equal(_clock.Now.AddDays(-1), new DateTimeOffset(leaf.NotBefore.ToUniversalTime()));
            Assert.Equal(_clock.Now.AddDays(365), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
        }

        _clock.Now = caNotAfter.AddDays(-30);
        using (var late = Ca.IssueLeaf("example.com"))
        {
            Assert.Equal(caNotAfter, new DateTimeOffset(late.NotAfter.ToUniversalTime()));
        }

        _clock.Now = caNotAfter.AddDays(1);
        Assert.Throws<InvalidOperationException>(() => Ca.IssueLeaf("example.com"));
    }

    [Fact]
    public void Leaf_generation_is_fast()
    {
        // Real time: building an SslStreamCertificateContext validates the chain against the real clock.
        _clock.Now = DateTimeOffset.UtcNow;
        // A warm-up call pays for JIT and OpenSSL initialisation, which is not what we measure.
        using (Ca.IssueLeaf("warmup.example"))
        {
        }

        const int Count = 50;
        var leafTimer = Stopwatch.StartNew();
        for (var i = 0; i < Count; i++)
        {
            using var leaf = Ca.IssueLeaf($"leaf{i}.example");
        }

        leafTimer.Stop();
        var contextTimer = Stopwatch.StartNew();
        for (var i = 0; i < Count; i++)
        {
            Ca.GetServerContext($"ctx{i}.example");
        }

        contextTimer.Stop();
        output.WriteLine($"IssueLeaf: {leafTimer.Elapsed.TotalMilliseconds / Count:F2} ms per leaf; GetServerContext (leaf + context): {contextTimer.Elapsed.TotalMilliseconds / Count:F2} ms per host ({Count} each).");
        Assert.Equal(Count, Ca.CachedLeafCount);
    }

    private bool ChainsToCa(X509Certificate2 leaf)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca.Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = _clock.Now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        var ok = chain.Build(leaf);
        if (!ok)
        {
            output.WriteLine(string.Join("; ", chain.ChainStatus.Select(s => $"{s.Status}: {s.StatusInformation}")));
        }

        return ok;
    }
}
