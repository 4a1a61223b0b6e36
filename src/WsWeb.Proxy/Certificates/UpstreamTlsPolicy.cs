using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WsWeb.Proxy.Certificates;

/// <summary>
/// How the proxy checks the servers it connects to: the system roots by default, nothing with
/// <c>--ssl-insecure</c>, and optionally extra roots from a PEM trust bundle.
/// </summary>
/// <remarks>
/// A trust bundle adds to the system roots rather than replacing them (mitmproxy replaces them).
/// The usual reason to pass one is an internal or development server signed by a private CA,
/// while the same session keeps talking to public sites; replacing the system roots would break
/// every one of those. Trusting both costs nothing a user did not already trust.
/// </remarks>
internal sealed class UpstreamTlsPolicy : IDisposable
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");

    private readonly X509Certificate2Collection _bundle;

    public UpstreamTlsPolicy(UpstreamTlsOptions options, ILogger? logger = null)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Insecure, options.TrustBundlePath, logger)
    {
    }

    /// <exception cref="CertificateFileException">The trust bundle is missing, unreadable or holds no certificate.</exception>
    public UpstreamTlsPolicy(bool insecure = false, string? trustBundlePath = null, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        Insecure = insecure;
        _bundle = trustBundlePath is null ? [] : LoadBundle(trustBundlePath);
        if (insecure)
        {
            CertificateLog.UpstreamVerificationDisabled(logger);
        }
        else if (trustBundlePath is not null)
        {
            CertificateLog.TrustBundleLoaded(logger, _bundle.Count, trustBundlePath);
        }
    }

    public bool Insecure { get; }

    /// <summary>Extra roots from the trust bundle (empty without one).</summary>
    public X509Certificate2Collection TrustBundle => _bundle;

    /// <summary>Client options for a TLS connection to <paramref name="targetHost"/> (name or IP, used for SNI and the name check).</summary>
    public SslClientAuthenticationOptions CreateOptions(string targetHost, List<SslApplicationProtocol>? applicationProtocols = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(targetHost);
        return new SslClientAuthenticationOptions
        {
            // Brackets and a trailing dot would defeat both SNI and the name check.
            TargetHost = HostName.Parse(targetHost).Name,
            ApplicationProtocols = applicationProtocols,
            RemoteCertificateValidationCallback = ValidateServerCertificate,
            // Revocation lookups would stall every new upstream connection on a network fetch;
            // browsers do not do hard-fail revocation either.
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
    }

    /// <summary>A <see cref="RemoteCertificateValidationCallback"/>, for callers that build their own options.</summary>
    public bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors sslPolicyErrors)
    {
        if (Insecure || sslPolicyErrors == SslPolicyErrors.None)
        {
            return true;
        }

        // The bundle can only vouch for the issuer: a wrong name or no certificate stays an error.
        if (!sslPolicyErrors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors) || _bundle.Count == 0 || certificate is null)
        {
            return false;
        }

        return sslPolicyErrors == SslPolicyErrors.RemoteCertificateChainErrors && BuildOnBundle(chain, certificate, out _);
    }

    /// <summary>Builds the server's chain on the bundle's roots.</summary>
    /// <param name="vouched">Whether the chain reaches a bundle root (it may still fail for other reasons, such as dates).</param>
    private bool BuildOnBundle(X509Chain? chain, X509Certificate certificate, out bool vouched)
    {
        var leaf = certificate as X509Certificate2;
        using var owned = leaf is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_bundle);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(ServerAuth);

        if (chain is not null)
        {
            // The intermediates the server sent are only in the chain SslStream built.
            custom.ChainPolicy.ExtraStore.AddRange(chain.ChainPolicy.ExtraStore);
        }

        var built = custom.Build(leaf ?? owned!);
        vouched = built || !custom.ChainStatus.Any(status => status.Status is X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain);
        return built;
    }

    /// <summary>Why a server's certificate was refused, in words a user can act on.</summary>
    public string Describe(string host, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable) || certificate is null)
        {
            return "the server sent no certificate";
        }

        // SslStream's chain knows only the system roots: when the bundle vouches for the issuer, what is left to say
        // is the name or the dates, not "untrusted CA" (the user already gave that CA).
        var bundleVouches = false;
        if (_bundle.Count > 0 && errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            BuildOnBundle(chain, certificate, out bundleVouches);
        }

        var reasons = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            reasons.Add($"its certificate ({certificate.Subject}) is not valid for {host}");
        }

        foreach (var status in chain?.ChainStatus ?? [])
        {
            var reason = status.Status switch
            {
                X509ChainStatusFlags.NotTimeValid when certificate is X509Certificate2 leaf =>
                    $"its certificate is outside its validity ({leaf.NotBefore:yyyy-MM-dd} to {leaf.NotAfter:yyyy-MM-dd})",
                X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain when bundleVouches => "",
                X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain =>
                    $"its certificate is issued by {certificate.Issuer}, which is not a trusted CA",
                _ => status.StatusInformation.Trim(),
            };
            if (reason.Length > 0 && !reasons.Contains(reason))
            {
                reasons.Add(reason);
            }
        }

        return reasons.Count == 0 ? $"its certificate was refused ({errors})" : string.Join("; ", reasons);
    }

    public void Dispose()
    {
        foreach (var cert in _bundle)
        {
            cert.Dispose();
        }
    }

    private static X509Certificate2Collection LoadBundle(string path)
    {
        var bundle = new X509Certificate2Collection();
        try
        {
            bundle.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CertificateFileException($"Cannot read the upstream trust bundle {path}: {ex.Message}", path, ex);
        }

        if (bundle.Count == 0)
        {
            throw new CertificateFileException($"The upstream trust bundle {path} holds no PEM certificate.", path);
        }

        return bundle;
    }
}
