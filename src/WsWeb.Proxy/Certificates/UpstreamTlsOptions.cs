namespace WsWeb.Proxy.Certificates;

/// <summary>How the proxy verifies the certificates of the servers it connects to.</summary>
public sealed record UpstreamTlsOptions
{
    /// <summary><c>--ssl-insecure</c>: accept any upstream certificate.</summary>
    public bool Insecure { get; init; }

    /// <summary>
    /// A PEM file with one or more CA certificates trusted for upstream servers in addition to the
    /// system roots.
    /// </summary>
    public string? TrustBundlePath { get; init; }
}
