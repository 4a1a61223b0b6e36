using Microsoft.Extensions.Logging;

namespace WsWeb.Proxy.Certificates;

internal static partial class CertificateLog
{
    [LoggerMessage(1, LogLevel.Information, "Created a new certificate authority {Subject} (SHA-256 {Thumbprint}) in {Path}; install {CertificatePath} in clients to trust intercepted TLS.")]
    public static partial void CaCreated(ILogger logger, string subject, string thumbprint, string path, string certificatePath);

    [LoggerMessage(2, LogLevel.Information, "Loaded certificate authority {Subject} (SHA-256 {Thumbprint}) from {Path}, valid until {NotAfter:O}.")]
    public static partial void CaLoaded(ILogger logger, string subject, string thumbprint, string path, DateTimeOffset notAfter);

    [LoggerMessage(3, LogLevel.Information, "Wrote missing CA certificate file {Path}.")]
    public static partial void PublicFileRestored(ILogger logger, string path);

    [LoggerMessage(4, LogLevel.Warning, "{Path} holds the CA private key but is accessible by other users (mode {Mode}); consider chmod 600.")]
    public static partial void KeyFileTooOpen(ILogger logger, string path, string mode);

    [LoggerMessage(5, LogLevel.Debug, "Issued leaf certificate for {Host} in {ElapsedMs:F2} ms.")]
    public static partial void LeafIssued(ILogger logger, string host, double elapsedMs);

    [LoggerMessage(6, LogLevel.Warning, "Upstream TLS certificate verification is disabled (--ssl-insecure).")]
    public static partial void UpstreamVerificationDisabled(ILogger logger);

    [LoggerMessage(7, LogLevel.Information, "Trusting {Count} extra upstream CA certificate(s) from {Path} in addition to the system roots.")]
    public static partial void TrustBundleLoaded(ILogger logger, int count, string path);

    [LoggerMessage(8, LogLevel.Information, "Using mitmproxy's certificate authority from {Path}: clients that trust mitmproxy trust WsWeb too.")]
    public static partial void MitmproxyCaUsed(ILogger logger, string path);

    [LoggerMessage(9, LogLevel.Warning, "The CA in {Path} is not valid before {NotBefore:O}, later than this machine's clock: clients refuse every certificate WsWeb makes until then. Check the clock, or {StartAfresh} to generate a new CA (clients must then trust it again).")]
    public static partial void CaNotYetValid(ILogger logger, string path, DateTimeOffset notBefore, string startAfresh);
}
