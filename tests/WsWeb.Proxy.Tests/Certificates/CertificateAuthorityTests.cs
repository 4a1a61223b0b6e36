using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using WsWeb.Proxy.Certificates;
using WsWeb.Tests.Shared;

namespace WsWeb.Proxy.Tests.Certificates;

public sealed class CertificateAuthorityTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void New_CA_has_the_subject_extensions_key_and_validity_of_a_CA()
    {
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, new ManualTimeProvider(Start));
        var cert = ca.Certificate;

        Assert.Equal("CN=WsWeb CA, O=WsWeb", cert.Subject);
        Assert.Equal(cert.Subject, cert.Issuer);
        Assert.False(cert.HasPrivateKey);
        Assert.Equal(Start.AddDays(-1), new DateTimeOffset(cert.NotBefore.ToUniversalTime()));
        Assert.Equal(Start.AddDays(3650), new DateTimeOffset(cert.NotAfter.ToUniversalTime()));
        Assert.Equal(16, cert.SerialNumberBytes.Length);

        using (var key = cert.GetECDsaPublicKey())
        {
            Assert.NotNull(key);
            Assert.Equal(256, key.KeySize);
        }

        var constraints = Assert.Single(cert.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(constraints.Critical);
        Assert.True(constraints.CertificateAuthority);

        var usage = Assert.Single(cert.Extensions.OfType<X509KeyUsageExtension>());
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, usage.KeyUsages);

        var eku = Assert.Single(cert.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Contains(eku.EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.1");

        var ski = Assert.Single(cert.Extensions.OfType<X509SubjectKeyIdentifierExtension>());
        Assert.False(string.IsNullOrEmpty(ski.SubjectKeyIdentifier));
    }

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task A_data_directory_holding_mitmproxys_ca_uses_it_instead_of_planting_a_second_one()
    {
        // --confdir ~/.mitmproxy: clients that trust mitmproxy's CA must trust WsWeb's leaves too.
        var confdir = await ExternalTools.MitmproxyConfdirAsync(_temp.Combine("mitmproxy"));
        using var mitmproxyCa = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(confdir, "mitmproxy-ca-cert.pem")));
        var log = new Infrastructure.LogCapture();

        using (var ca = CertificateAuthority.LoadOrCreate(confdir, TimeProvider.System, log.CreateLogger<CertificateAuthority>()))
        {
            Assert.Equal(mitmproxyCa.Thumbprint, ca.Certificate.Thumbprint);
            Assert.Equal(Path.Combine(confdir, "mitmproxy-ca.pem"), ca.PemPath);
            Assert.False(File.Exists(Path.Combine(confdir, "wsweb-ca.pem")), "no second CA beside mitmproxy's");
            Assert.Contains(log.Messages(LogLevel.Information), m => m.StartsWith("Using mitmproxy's certificate authority", StringComparison.Ordinal));

            using var leaf = ca.IssueLeaf("example.test");
            // Under mitmproxy's RSA CA, leaves are RSA as mitmproxy's are (clients that accept only RSA still connect).
            using (var leafKey = leaf.GetRSAPublicKey())
            {
                Assert.NotNull(leafKey);
                Assert.Equal(2048, leafKey.KeySize);
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(mitmproxyCa);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.True(chain.Build(leaf), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        }

        // And again at the next start: the certificate files WsWeb serves beside it do not make it look like a lost wsweb-ca.pem.
        using var again = CertificateAuthority.LoadOrCreate(confdir, TimeProvider.System);
        Assert.Equal(mitmproxyCa.Thumbprint, again.Certificate.Thumbprint);
    }

    [Fact]
    public void A_ca_not_valid_yet_by_this_clock_loads_with_a_warning()
    {
        CertificateAuthority.LoadOrCreate(_temp.Root, new ManualTimeProvider(Start)).Dispose();
        var log = new Infrastructure.LogCapture();

        // The clock went back two days: the CA starts a day before it was made, still a day ahead of this clock.
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, new ManualTimeProvider(Start.AddDays(-2)), log.CreateLogger<CertificateAuthority>());

        var warning = Assert.Single(log.Messages(LogLevel.Warning));
        Assert.Contains("is not valid before", warning, StringComparison.Ordinal);
        Assert.Contains("Check the clock", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void New_CA_files_are_written_with_the_key_readable_by_the_owner_only()
    {
        var dataDir = _temp.Combine("nested", "data");
        using var ca = CertificateAuthority.LoadOrCreate(dataDir, TimeProvider.System);

        Assert.Equal(Path.Combine(dataDir, "wsweb-ca.pem"), ca.PemPath);
        Assert.Equal(Path.Combine(dataDir, "wsweb-ca-cert.pem"), ca.CertificatePemPath);
        Assert.Equal(Path.Combine(dataDir, "wsweb-ca-cert.cer"), ca.CertificateCerPath);

        var pem = File.ReadAllText(ca.PemPath);
        Assert.Contains("-----BEGIN PRIVATE KEY-----", pem, StringComparison.Ordinal);
        Assert.Contains("-----BEGIN CERTIFICATE-----", pem, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", File.ReadAllText(ca.CertificatePemPath), StringComparison.Ordinal);
        Assert.Equal(ca.Certificate.RawData, File.ReadAllBytes(ca.CertificateCerPath));
        Assert.Empty(Directory.GetFiles(dataDir, "*.tmp"));

        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ca.PemPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dataDir));
        // Public files: 0644 less whatever the umask removes, and never writable by others.
        var publicMode = File.GetUnixFileMode(ca.CertificatePemPath);
        Assert.True(publicMode.HasFlag(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.Equal((UnixFileMode)0, publicMode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.UserExecute));
    }

    [Fact]
    public void Second_start_loads_the_same_CA_and_it_still_signs()
    {
        string thumbprint;
        using (var first = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
            thumbprint = first.Certificate.Thumbprint;
        }

        var before = File.ReadAllBytes(_temp.Combine("wsweb-ca.pem"));
        using var second = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);

        Assert.Equal(thumbprint, second.Certificate.Thumbprint);
        Assert.Equal(before, File.ReadAllBytes(second.PemPath));
        using var leaf = second.IssueLeaf("example.com");
        Assert.True(ChainsTo(leaf, second.Certificate));
    }

    [Fact]
    public void Two_installs_get_different_CAs()
    {
        using var a = CertificateAuthority.LoadOrCreate(_temp.Combine("a"), TimeProvider.System);
        using var b = CertificateAuthority.LoadOrCreate(_temp.Combine("b"), TimeProvider.System);

        Assert.NotEqual(a.Certificate.Thumbprint, b.Certificate.Thumbprint);
        Assert.NotEqual(a.Certificate.SerialNumber, b.Certificate.SerialNumber);
        using var leafOfB = b.IssueLeaf("example.com");
        Assert.False(ChainsTo(leafOfB, a.Certificate));
    }

    [Fact]
    public void Corrupt_key_file_fails_with_the_file_name_and_is_left_alone()
    {
        var pemPath = _temp.Combine("wsweb-ca.pem");
        File.WriteAllText(pemPath, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));

        Assert.Equal(pemPath, error.FilePath);
        Assert.Contains(pemPath, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN CERTIFICATE-----\nnot base64", File.ReadAllText(pemPath), StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.Combine("wsweb-ca-cert.pem")));
    }

    [Fact]
    public void Key_file_without_a_private_key_fails_with_the_file_name()
    {
        using (var ca = CertificateAuthority.LoadOrCreate(_temp.Combine("donor"), TimeProvider.System))
        {
            File.WriteAllText(_temp.Combine("wsweb-ca.pem"), ca.Certificate.ExportCertificatePem());
        }

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));

        Assert.Equal(_temp.Combine("wsweb-ca.pem"), error.FilePath);
    }

    [Fact]
    public void Corrupt_or_foreign_certificate_file_fails_with_its_name()
    {
        using (CertificateAuthority.LoadOrCreate(_temp.Combine("other"), TimeProvider.System))
        using (CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
        }

        var cerPath = _temp.Combine("wsweb-ca-cert.cer");
        File.WriteAllBytes(cerPath, [1, 2, 3]);
        var corrupt = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));
        Assert.Equal(cerPath, corrupt.FilePath);

        File.Delete(cerPath);
        var pemPath = _temp.Combine("wsweb-ca-cert.pem");
        File.Copy(_temp.Combine("other", "wsweb-ca-cert.pem"), pemPath, overwrite: true);
        var foreign = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));
        Assert.Equal(pemPath, foreign.FilePath);
    }

    [Fact]
    public void Missing_certificate_files_are_rewritten_from_the_key_file()
    {
        string thumbprint;
        using (var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
            thumbprint = ca.Certificate.Thumbprint;
        }

        File.Delete(_temp.Combine("wsweb-ca-cert.pem"));
        File.Delete(_temp.Combine("wsweb-ca-cert.cer"));
        using var again = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);

        Assert.Equal(thumbprint, again.Certificate.Thumbprint);
        Assert.Equal(again.ExportPem(), File.ReadAllBytes(again.CertificatePemPath));
        Assert.Equal(again.ExportCer(), File.ReadAllBytes(again.CertificateCerPath));
    }

    [Fact]
    public void Lost_key_file_with_an_exported_certificate_is_not_silently_replaced()
    {
        using (CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
        }

        File.Delete(_temp.Combine("wsweb-ca.pem"));
        var cert = File.ReadAllBytes(_temp.Combine("wsweb-ca-cert.pem"));

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));

        Assert.Equal(_temp.Combine("wsweb-ca.pem"), error.FilePath);
        Assert.Equal(cert, File.ReadAllBytes(_temp.Combine("wsweb-ca-cert.pem")));
        Assert.False(File.Exists(_temp.Combine("wsweb-ca.pem")));
    }

    [Fact]
    public void Expired_CA_fails_to_load_with_the_file_name()
    {
        var clock = new ManualTimeProvider(Start);
        using (CertificateAuthority.LoadOrCreate(_temp.Root, clock))
        {
        }

        clock.Now = Start.AddDays(3651);
        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, clock));

        Assert.Equal(_temp.Combine("wsweb-ca.pem"), error.FilePath);
        Assert.Contains("expired", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0b111_111_111)]     // mkdir -m 777
    [InlineData(0b111_111_000)]     // group-writable, as a umask of 002 makes directories
    [InlineData(0b1_111_111_111)]   // like /tmp: the sticky bit does not stop others from creating the CA files first
    public void A_data_directory_others_can_write_is_refused_with_the_chmod_that_fixes_it(int mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var dataDir = _temp.Combine("open");
        Directory.CreateDirectory(dataDir);
        File.SetUnixFileMode(dataDir, (UnixFileMode)mode);

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(dataDir, TimeProvider.System));

        Assert.Equal(dataDir, error.FilePath);
        Assert.StartsWith($"--data-dir: {dataDir} can be written by other users (mode {Convert.ToString(mode, 8)})", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Run chmod 700 {dataDir}", error.Message, StringComparison.Ordinal);
        // Nothing was written into it, and its mode is left for the user to fix.
        Assert.Empty(Directory.EnumerateFileSystemEntries(dataDir));
        Assert.Equal((UnixFileMode)mode, File.GetUnixFileMode(dataDir));

        File.SetUnixFileMode(dataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var ca = CertificateAuthority.LoadOrCreate(dataDir, TimeProvider.System);
        Assert.True(File.Exists(ca.PemPath));
    }

    [Theory]
    [InlineData(0b110_110_000)]   // chmod g+w
    [InlineData(0b110_000_010)]   // chmod o+w
    public void A_key_file_others_can_write_is_refused_with_the_chmod_that_fixes_it(int mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string thumbprint;
        using (var created = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
            thumbprint = created.Certificate.Thumbprint;
        }

        var pemPath = _temp.Combine("wsweb-ca.pem");
        var key = File.ReadAllBytes(pemPath);
        File.SetUnixFileMode(pemPath, (UnixFileMode)mode);

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));

        Assert.Equal(pemPath, error.FilePath);
        Assert.Equal(
            $"{pemPath} holds the CA private key but can be written by other users (mode {Convert.ToString(mode, 8)}), so any of them could replace the CA. Run chmod 600 {pemPath}.",
            error.Message);
        Assert.Equal(key, File.ReadAllBytes(pemPath));

        File.SetUnixFileMode(pemPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);
        Assert.Equal(thumbprint, ca.Certificate.Thumbprint);
    }

    [Fact]
    public void The_owner_read_for_a_file_is_the_user_that_made_it()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var file = _temp.Combine("mine");
        File.WriteAllText(file, "");

        Assert.NotNull(UnixOwner.EffectiveUserId);
        Assert.Equal(Environment.IsPrivilegedProcess, UnixOwner.EffectiveUserId == 0);
        Assert.Equal(UnixOwner.EffectiveUserId, UnixOwner.OwnerOf(file));
        Assert.Null(UnixOwner.OwnerOf(_temp.Combine("missing")));
    }

    [RequiresRootOnLinuxFact]
    public void A_key_file_that_belongs_to_another_user_is_refused()
    {
        using (CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System))
        {
        }

        var pemPath = _temp.Combine("wsweb-ca.pem");
        UnixUsers.Chown(pemPath, UnixUsers.Nobody);
        Assert.Equal((uint)UnixUsers.Nobody, UnixOwner.OwnerOf(pemPath));

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System));

        Assert.Equal(pemPath, error.FilePath);
        Assert.StartsWith($"{pemPath} holds the CA private key but belongs to uid 65534, not to uid 0 that WsWeb runs as, so that user could replace the CA.", error.Message, StringComparison.Ordinal);
        Assert.Contains($"chown 0 {pemPath}", error.Message, StringComparison.Ordinal);

        UnixUsers.Chown(pemPath, 0);
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);
    }

    [RequiresRootOnLinuxFact]
    public void A_data_directory_that_belongs_to_another_user_is_refused()
    {
        var dataDir = UnixUsers.CreatePrivateDirectory(_temp.Combine("theirs"));
        UnixUsers.Chown(dataDir, UnixUsers.Nobody);

        var error = Assert.Throws<CertificateFileException>(() => CertificateAuthority.LoadOrCreate(dataDir, TimeProvider.System));

        Assert.Equal(dataDir, error.FilePath);
        Assert.StartsWith($"--data-dir: {dataDir} belongs to uid 65534, not to uid 0 that WsWeb runs as", error.Message, StringComparison.Ordinal);
        Assert.Contains($"chown 0 {dataDir}", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dataDir));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]   // a CA made without a Subject Key Identifier (openssl -addext subjectKeyIdentifier=none)
    public void User_supplied_RSA_CA_is_loaded_and_signs_leaves(bool withSubjectKeyIdentifier)
    {
        using (var rsa = RSA.Create(2048))
        {
            var request = new CertificateRequest("CN=Corp CA", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(X509BasicConstraintsExtension.CreateForCertificateAuthority());
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, critical: true));
            if (withSubjectKeyIdentifier)
            {
                request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
            }

            using var corp = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
            // The RSA PRIVATE KEY block mitmproxy writes, owner-only as it writes it (a umask of 002 would leave it group-writable).
            File.WriteAllText(_temp.Combine("wsweb-ca.pem"), rsa.ExportRSAPrivateKeyPem() + "\n" + corp.ExportCertificatePem() + "\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(_temp.Combine("wsweb-ca.pem"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);
        using var leaf = ca.IssueLeaf("corp.example");

        Assert.Equal("CN=Corp CA", ca.Certificate.Subject);
        Assert.True(ChainsTo(leaf, ca.Certificate));
    }

    [Fact]
    public void Exports_carry_the_CA_certificate_and_never_its_key()
    {
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);

        var pem = Encoding.ASCII.GetString(ca.ExportPem());
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", pem, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", pem, StringComparison.Ordinal);
        using (var fromPem = X509Certificate2.CreateFromPem(pem))
        {
            Assert.Equal(ca.Certificate.Thumbprint, fromPem.Thumbprint);
        }

        Assert.Equal(ca.Certificate.RawData, ca.ExportCer());
        Assert.Equal(File.ReadAllBytes(ca.CertificatePemPath), ca.ExportPem());

        var p12 = X509CertificateLoader.LoadPkcs12Collection(ca.ExportP12(), password: null);
        try
        {
            var only = Assert.Single(p12);
            Assert.Equal(ca.Certificate.Thumbprint, only.Thumbprint);
            Assert.False(only.HasPrivateKey);
        }
        finally
        {
            foreach (var cert in p12)
            {
                cert.Dispose();
            }
        }
    }

    private static bool ChainsTo(X509Certificate2 leaf, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }
}
