using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WsWeb.Core;

namespace WsWeb.Proxy.Certificates;

/// <summary>
/// The per-install CA that signs a leaf certificate for every intercepted host, and the cache of
/// the TLS contexts built from those leaves.
/// </summary>
internal sealed class CertificateAuthority : IDisposable
{
    /// <summary>CA certificate and private key; the only file that must stay secret.</summary>
    public const string PemFileName = "wsweb-ca.pem";

    /// <summary>mitmproxy's CA (key and certificate), used when a data directory holds it and no <see cref="PemFileName"/>.</summary>
    public const string MitmproxyPemFileName = "mitmproxy-ca.pem";

    /// <summary>CA certificate only, PEM, for clients to install.</summary>
    public const string CertificatePemFileName = "wsweb-ca-cert.pem";

    /// <summary>CA certificate only, DER (what Windows and Android call .cer).</summary>
    public const string CertificateCerFileName = "wsweb-ca-cert.cer";

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const UnixFileMode PublicFileMode = OwnerOnly.FileMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode WritableByOthers = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);

    // Under Apple's 398-day ceiling for TLS server certificates.
    private static readonly TimeSpan LeafLifetime = TimeSpan.FromDays(365);

    // Clients with a clock a little behind ours must not see a not-yet-valid certificate.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromDays(1);

    private readonly X509Certificate2 _caWithKey;
    private readonly X509Certificate2Collection _chainExtras;
    private readonly X509AuthorityKeyIdentifierExtension _authorityKeyId;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BoundedCache<SslStreamCertificateContext> _contexts;
    private readonly Func<string, SslStreamCertificateContext> _createContext;

    /// <summary>
    /// Under an RSA CA (mitmproxy's), leaves are RSA as mitmproxy's are, so clients that accept only RSA (ECDHE-RSA
    /// suites, RSA signature algorithms) still connect. Making an RSA key takes tens of milliseconds, so one is made per
    /// CA, as mitmproxy does, and each leaf imports it into a key object of its own. Null under an ECDSA CA.
    /// </summary>
    private readonly Lazy<RSAParameters>? _rsaLeafKey;
    private long _leavesIssued;
    private bool _disposed;

    private CertificateAuthority(X509Certificate2 caWithKey, string dataDirectory, string pemPath, int leafCacheSize, TimeProvider time, ILogger logger)
    {
        PemPath = pemPath;
        _caWithKey = caWithKey;
        Certificate = X509CertificateLoader.LoadCertificate(caWithKey.RawData);
        _chainExtras = [Certificate];
        // A CA brought by the user may lack a Subject Key Identifier; leaves then name its key by the usual SHA-1 of it.
        _authorityKeyId = Certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().Any()
            ? X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false)
            : X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(new X509SubjectKeyIdentifierExtension(Certificate.PublicKey, critical: false));
        _time = time;
        _logger = logger;
        _contexts = new BoundedCache<SslStreamCertificateContext>(leafCacheSize);
        _createContext = CreateContext;
        DataDirectory = dataDirectory;
        if (Certificate.GetKeyAlgorithm() == RsaOid)
        {
            _rsaLeafKey = new Lazy<RSAParameters>(() =>
            {
                using var rsa = RSA.Create(2048);
                return rsa.ExportParameters(includePrivateParameters: true);
            });
        }
    }

    /// <summary>The CA certificate without its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public string DataDirectory { get; }

    /// <summary>Path of the CA's key and certificate: <see cref="PemFileName"/>, or <see cref="MitmproxyPemFileName"/> when that is what the data directory holds.</summary>
    public string PemPath { get; }

    /// <summary>Path of <see cref="CertificatePemFileName"/>.</summary>
    public string CertificatePemPath => Path.Combine(DataDirectory, CertificatePemFileName);

    /// <summary>Path of <see cref="CertificateCerFileName"/>.</summary>
    public string CertificateCerPath => Path.Combine(DataDirectory, CertificateCerFileName);

    public int LeafCacheSize => _contexts.Capacity;

    /// <summary>Leaf contexts currently cached.</summary>
    internal int CachedLeafCount => _contexts.Count;

    /// <summary>Leaves signed since start, cached or not; lets tests see that a cache hit signed nothing.</summary>
    internal long LeavesIssued => Interlocked.Read(ref _leavesIssued);

    public static CertificateAuthority LoadOrCreate(CertificateOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return LoadOrCreate(options.DataDirectory, time, logger, options.LeafCacheSize);
    }

    /// <summary>
    /// Loads the CA from <paramref name="dataDirectory"/>, or generates and stores one if the
    /// directory holds none.
    /// </summary>
    /// <exception cref="CertificateFileException">A CA file exists but is unreadable, corrupt or inconsistent.</exception>
    public static CertificateAuthority LoadOrCreate(string dataDirectory, TimeProvider time, ILogger? logger = null, int leafCacheSize = 1024)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDirectory);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(leafCacheSize, 1);
        logger ??= NullLogger.Instance;
        dataDirectory = Path.GetFullPath(dataDirectory);
        try
        {
            return LoadOrCreateIn(dataDirectory, time, logger, leafCacheSize);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Creating the directory or writing a new CA failed: a directory below a file, no write permission, a full disk.
            throw new CertificateFileException($"--data-dir: '{dataDirectory}' cannot hold WsWeb's CA: {ex.Message}", dataDirectory, ex);
        }
    }

    /// <summary>
    /// Refuses a data directory that another local user may write: they could plant a CA key of their own there (or
    /// replace ours), and every client that trusts this install's CA would trust theirs. The rule is ssh's for ~/.ssh:
    /// no write permission for group or others, owned by this user or root. A directory that does not exist yet passes
    /// (it is made owner-only). On Windows, whose ACLs this does not read, nothing is checked.
    /// </summary>
    /// <exception cref="CertificateFileException">The directory is writable by group or others, or another user owns it.</exception>
    internal static void CheckDataDirectory(string dataDirectory)
    {
        dataDirectory = Path.GetFullPath(dataDirectory);
        if (OperatingSystem.IsWindows() || !Directory.Exists(dataDirectory))
        {
            return;
        }

        // The sticky bit (a data directory in /tmp itself) does not help: others may still create the CA files first.
        var mode = File.GetUnixFileMode(dataDirectory);
        if ((mode & WritableByOthers) != 0)
        {
            throw new CertificateFileException(
                $"--data-dir: {dataDirectory} can be written by other users (mode {Octal(mode)}), so any of them could put a CA key of their own in it. Run chmod 700 {dataDirectory}, or choose another --data-dir.",
                dataDirectory);
        }

        CheckOwner(dataDirectory, $"--data-dir: {dataDirectory} belongs to", "so that user could put a CA key of their own in it", "choose another --data-dir");
    }

    /// <summary>The key file's counterpart of <see cref="CheckDataDirectory"/>: another user who can write it can swap the CA.</summary>
    /// <summary>What to delete for a new CA: WsWeb's files, or mitmproxy's CA, which WsWeb uses only while there is no wsweb-ca.pem.</summary>
    private static string StartAfresh(string pemPath) => Path.GetFileName(pemPath) == MitmproxyPemFileName
        ? $"move {MitmproxyPemFileName} out of the directory (mitmproxy keeps using it only if it stays)"
        : "delete the wsweb-ca* files";

    private static void CheckKeyFile(string pemPath)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = File.GetUnixFileMode(pemPath);
        if ((mode & WritableByOthers) != 0)
        {
            throw new CertificateFileException(
                $"{pemPath} holds the CA private key but can be written by other users (mode {Octal(mode)}), so any of them could replace the CA. Run chmod 600 {pemPath}.",
                pemPath);
        }

        CheckOwner(pemPath, $"{pemPath} holds the CA private key but belongs to", "so that user could replace the CA", $"{StartAfresh(pemPath)} to generate a new CA (clients must then trust it again)");
    }

    /// <summary>Owned by this user or by root (who could change it anyway), as ssh wants; unknown owners pass.</summary>
    private static void CheckOwner(string path, string subject, string consequence, string alternative)
    {
        if (UnixOwner.OwnerOf(path) is { } owner && UnixOwner.EffectiveUserId is { } self && owner != self && owner != 0)
        {
            throw new CertificateFileException(
                $"{subject} uid {owner}, not to uid {self} that WsWeb runs as, {consequence}. Make it yours (as root: chown {self} {path}), or {alternative}.",
                path);
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8);

    private static CertificateAuthority LoadOrCreateIn(string dataDirectory, TimeProvider time, ILogger logger, int leafCacheSize)
    {
        CreateDirectory(dataDirectory);
        CheckDataDirectory(dataDirectory);

        var pemPath = Path.Combine(dataDirectory, PemFileName);
        var mitmproxyPemPath = Path.Combine(dataDirectory, MitmproxyPemFileName);
        X509Certificate2 ca;
        var created = false;
        if (!File.Exists(pemPath) && File.Exists(mitmproxyPemPath))
        {
            // --confdir ~/.mitmproxy: the CA clients already trust for mitmproxy, not a second one planted beside it.
            pemPath = mitmproxyPemPath;
            CheckKeyFile(pemPath);
            ca = LoadCa(pemPath, time, logger);
            CertificateLog.MitmproxyCaUsed(logger, pemPath);
        }
        else if (File.Exists(pemPath))
        {
            CheckKeyFile(pemPath);
            ca = LoadCa(pemPath, time, logger);
        }
        else
        {
            // Without the key the exported certificate can never sign again; replacing it silently
            // would leave clients trusting a CA that no longer matches, so say so instead.
            foreach (var name in (ReadOnlySpan<string>)[CertificatePemFileName, CertificateCerFileName])
            {
                var orphan = Path.Combine(dataDirectory, name);
                if (File.Exists(orphan))
                {
                    throw new CertificateFileException(
                        $"{pemPath} (the CA private key) is missing but {orphan} exists. Restore {PemFileName}, or delete the wsweb-ca* files to generate a new CA (clients must then trust it again).",
                        pemPath);
                }
            }

            ca = GenerateCa(time);
            created = TryWriteNewFile(pemPath, Encoding.ASCII.GetBytes(ExportKeyAndCertificatePem(ca)), OwnerOnly.FileMode);
            if (!created)
            {
                // Another process started at the same moment and stored its CA first: use that one.
                ca.Dispose();
                ca = LoadCa(pemPath, time, logger);
            }
        }

        CertificateAuthority? authority = null;
        try
        {
            authority = new CertificateAuthority(ca, dataDirectory, pemPath, leafCacheSize, time, logger);
            authority.EnsurePublicFile(authority.CertificatePemPath, authority.ExportPem(), isPem: true, logAsRestored: !created);
            authority.EnsurePublicFile(authority.CertificateCerPath, authority.ExportCer(), isPem: false, logAsRestored: !created);
            var thumbprint = authority.Certificate.GetCertHashString(HashAlgorithmName.SHA256);
            if (created)
            {
                CertificateLog.CaCreated(logger, authority.Certificate.Subject, thumbprint, pemPath, authority.CertificatePemPath);
            }
            else
            {
                CertificateLog.CaLoaded(logger, authority.Certificate.Subject, thumbprint, pemPath, authority.Certificate.NotAfter.ToUniversalTime());
            }

            return authority;
        }
        catch
        {
            if (authority is null)
            {
                ca.Dispose();
            }
            else
            {
                authority.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// The TLS server context for <paramref name="hostOrIp"/> (SNI name, CONNECT host or IP literal),
    /// from the cache or freshly signed. Concurrent calls for one new host sign a single leaf.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="hostOrIp"/> is not a valid host name or IP address.</exception>
    public SslStreamCertificateContext GetServerContext(string hostOrIp)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _contexts.GetOrAdd(HostName.Parse(hostOrIp).Name, _createContext);
    }

    /// <summary>Signs a new leaf for <paramref name="hostOrIp"/>, bypassing the cache. The result carries its private key.</summary>
    public X509Certificate2 IssueLeaf(string hostOrIp)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return IssueLeaf(HostName.Parse(hostOrIp));
    }

    /// <summary>The CA certificate as PEM, for download.</summary>
    public byte[] ExportPem() => Encoding.ASCII.GetBytes(Certificate.ExportCertificatePem() + "\n");

    /// <summary>The CA certificate as DER, for download.</summary>
    public byte[] ExportCer() => Certificate.Export(X509ContentType.Cert);

    /// <summary>
    /// The CA certificate alone as PKCS#12 without a password, like mitmproxy-ca-cert.p12: some
    /// devices only import .p12. The private key is never in it.
    /// </summary>
    public byte[] ExportP12() => new X509Certificate2Collection(Certificate).Export(X509ContentType.Pkcs12)!;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Certificate.Dispose();
        _caWithKey.Dispose();
    }

    // Building the context (chain build included) costs more than signing, so the context is what
    // is cached. Evicted contexts are not disposed: live connections may still use them.
    private SslStreamCertificateContext CreateContext(string canonicalHost) =>
        SslStreamCertificateContext.Create(IssueLeaf(HostName.Parse(canonicalHost)), _chainExtras, offline: true);

    private X509Certificate2 IssueLeaf(HostName host)
    {
        var started = _time.GetTimestamp();
        var now = _time.GetUtcNow();
        var caNotBefore = new DateTimeOffset(Certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var caNotAfter = new DateTimeOffset(Certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (now >= caNotAfter)
        {
            throw new InvalidOperationException($"The CA in {PemPath} expired on {caNotAfter:O}; delete the wsweb-ca* files to generate a new one.");
        }

        // A leaf may not outlive its issuer, nor start before it.
        var notBefore = Max(now - ClockSkew, caNotBefore);
        var notAfter = Min(now + LeafLifetime, caNotAfter);

        // P-256 keys take well under a millisecond to make, unlike RSA: a fresh one per leaf under WsWeb's own CA.
        using AsymmetricAlgorithm key = _rsaLeafKey is { } rsaKey ? RSA.Create(rsaKey.Value) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        // RFC 5280 caps the CN at 64 characters; longer names are still carried by the SAN.
        if (host.Name.Length <= 64)
        {
            subject.AddCommonName(host.Name);
        }

        subject.AddOrganizationName("WsWeb");
        var request = key is RSA rsaLeaf
            ? new CertificateRequest(subject.Build(), rsaLeaf, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest(subject.Build(), (ECDsa)key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        if (host.Address is { } address)
        {
            san.AddIpAddress(address);
        }
        else
        {
            san.AddDnsName(host.Name);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(X509BasicConstraintsExtension.CreateForEndEntity());
        // ECDSA keys only sign; an RSA leaf may also be used for RSA key transport (TLS 1.2's plain RSA suites).
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            key is RSA ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(_authorityKeyId);

        // A fresh key handle per leaf: AsymmetricAlgorithm instances are not documented as thread-safe.
        using var caKey = (AsymmetricAlgorithm?)_caWithKey.GetECDsaPrivateKey() ?? _caWithKey.GetRSAPrivateKey()
            ?? throw new InvalidOperationException("The CA key must be ECDSA or RSA.");
        using var publicOnly = request.Create(_caWithKey.SubjectName, CreateSignatureGenerator(caKey), notBefore, notAfter, NewSerialNumber());
        var leaf = key is RSA rsaPrivate ? publicOnly.CopyWithPrivateKey(rsaPrivate) : publicOnly.CopyWithPrivateKey((ECDsa)key);
        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot serve ephemeral keys; a PKCS#12 round trip gives the key a store it can use.
            var ephemeral = leaf;
            using (ephemeral)
            {
                leaf = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
            }
        }

        Interlocked.Increment(ref _leavesIssued);
        CertificateLog.LeafIssued(_logger, host.Name, _time.GetElapsedTime(started).TotalMilliseconds);
        return leaf;
    }

    private void EnsurePublicFile(string path, byte[] expected, bool isPem, bool logAsRestored)
    {
        if (!File.Exists(path))
        {
            if (TryWriteNewFile(path, expected, PublicFileMode) && logAsRestored)
            {
                CertificateLog.PublicFileRestored(_logger, path);
            }
        }

        // A certificate file that disagrees with the key may be the one the user installed; which
        // one is right is theirs to decide.
        byte[] onDisk;
        try
        {
            var bytes = File.ReadAllBytes(path);
            using var cert = isPem
                ? X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(bytes))
                : X509CertificateLoader.LoadCertificate(bytes);
            onDisk = cert.RawData;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CertificateFileException($"{path} is not a readable certificate ({ex.Message}). Delete it to have it rewritten from {PemFileName}.", path, ex);
        }

        if (!onDisk.AsSpan().SequenceEqual(Certificate.RawData))
        {
            throw new CertificateFileException($"{path} holds a different certificate than the CA in {PemFileName}. Delete it to have it rewritten from {PemFileName}.", path);
        }
    }

    private static X509Certificate2 GenerateCa(TimeProvider time)
    {
        var now = time.GetUtcNow();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=WsWeb CA, O=WsWeb"), key, HashAlgorithmName.SHA256);
        // Path length 0: this CA signs leaves only, so a leaked leaf key can never act as a CA.
        request.CertificateExtensions.Add(X509BasicConstraintsExtension.CreateForCertificateAuthority(pathLengthConstraint: 0));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));

        using var publicOnly = request.Create(request.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now - ClockSkew, now + CaLifetime, NewSerialNumber());
        return publicOnly.CopyWithPrivateKey(key);
    }

    private static X509Certificate2 LoadCa(string pemPath, TimeProvider time, ILogger logger)
    {
        X509Certificate2 ca;
        try
        {
            var pem = File.ReadAllText(pemPath, Encoding.ASCII);
            ca = X509Certificate2.CreateFromPem(pem, pem);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CertificateFileException(
                $"Cannot load the certificate authority from {pemPath}: {ex.Message} It must hold a PEM certificate and its private key. Fix or restore it, or {StartAfresh(pemPath)} to generate a new CA (clients must then trust it again).",
                pemPath,
                ex);
        }

        try
        {
            var constraints = ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
            if (constraints is not { CertificateAuthority: true })
            {
                throw new CertificateFileException($"The certificate in {pemPath} is not a CA certificate (BasicConstraints CA=true is missing).", pemPath);
            }

            if (time.GetUtcNow() >= ca.NotAfter.ToUniversalTime())
            {
                throw new CertificateFileException($"The CA in {pemPath} expired on {ca.NotAfter.ToUniversalTime():O}. To generate a new one, {StartAfresh(pemPath)} (clients must then trust it again).", pemPath);
            }

            if (time.GetUtcNow() < ca.NotBefore.ToUniversalTime())
            {
                // A clock set back, or a CA made on a machine whose clock was ahead: every leaf inherits the start.
                CertificateLog.CaNotYetValid(logger, pemPath, ca.NotBefore.ToUniversalTime(), StartAfresh(pemPath));
            }

            if (!OperatingSystem.IsWindows()
                && (File.GetUnixFileMode(pemPath) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
            {
                CertificateLog.KeyFileTooOpen(logger, pemPath, Octal(File.GetUnixFileMode(pemPath)));
            }

            return ca;
        }
        catch
        {
            ca.Dispose();
            throw;
        }
    }

    private static void CreateDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        OwnerOnly.CreateDirectory(path);
    }

    /// <summary>
    /// Writes a file that must not exist yet. The bytes go to a temporary file created with its final
    /// mode (so a key is never readable by others, even for an instant), which is then moved into
    /// place: a crash leaves no half-written file, and losing a race leaves the winner's file alone.
    /// </summary>
    /// <returns><see langword="false"/> if the file appeared meanwhile.</returns>
    private static bool TryWriteNewFile(string path, byte[] contents, UnixFileMode mode)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }

            try
            {
                File.Move(temporary, path, overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(path))
            {
                return false;
            }
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static string ExportKeyAndCertificatePem(X509Certificate2 ca)
    {
        using var key = ca.GetECDsaPrivateKey() ?? throw new InvalidOperationException("The generated CA has no ECDSA key.");
        return key.ExportPkcs8PrivateKeyPem() + "\n" + ca.ExportCertificatePem() + "\n";
    }

    // A user may drop in their own RSA CA (as with mitmproxy-ca.pem), so sign with whatever key it has.
    private static X509SignatureGenerator CreateSignatureGenerator(AsymmetricAlgorithm caKey) => caKey switch
    {
        ECDsa ecdsa => X509SignatureGenerator.CreateForECDsa(ecdsa),
        RSA rsa => X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1),
        _ => throw new InvalidOperationException("The CA key must be ECDSA or RSA."),
    };

    /// <summary>Random, positive, 16 bytes, never starting with a zero byte (DER wants a minimal encoding).</summary>
    private static byte[] NewSerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40);
        return serial;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
