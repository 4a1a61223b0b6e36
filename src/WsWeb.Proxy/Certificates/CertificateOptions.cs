namespace WsWeb.Proxy.Certificates;

/// <summary>Where the certificate authority lives and how many leaf certificates are kept in memory.</summary>
public sealed record CertificateOptions
{
    /// <summary>
    /// <c>~/.wsweb</c> as an absolute path. The host passes this rather than a literal <c>~</c>,
    /// which nothing below the shell would expand.
    /// </summary>
    public static string DefaultDataDirectory { get; } =
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".wsweb");

    /// <summary>Directory holding <c>wsweb-ca.pem</c> and the exported CA certificate; created (0700) if missing.</summary>
    public string DataDirectory { get; init; } = DefaultDataDirectory;

    /// <summary>Leaf TLS contexts kept in memory; the least recently used is evicted past this.</summary>
    public int LeafCacheSize { get; init; } = 1024;
}
