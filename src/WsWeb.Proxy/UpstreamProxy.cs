using System.Diagnostics.CodeAnalysis;

namespace WsWeb.Proxy;

/// <summary>
/// The proxy WsWeb reaches servers through in upstream mode (mitmproxy's <c>--mode upstream:URL</c>), as behind a
/// corporate proxy: every server connection is a CONNECT tunnel through it, plain HTTP included.
/// </summary>
/// <param name="Credentials">"user:password" for Basic Proxy-Authorization, from the URL's user info; null for none.</param>
public sealed record UpstreamProxy(string Host, int Port, string? Credentials)
{
    /// <summary>host:port as a CONNECT target writes it: IPv6 in brackets.</summary>
    public string Authority => $"{WsWeb.Core.Flows.HttpRequestData.HostForUrl(Host)}:{Port}";

    /// <summary>Without the credentials, for logs and errors.</summary>
    public override string ToString() => $"http://{Authority}";

    /// <summary>Reads mitmproxy's spelling, <c>upstream:http://[user:password@]HOST[:PORT]</c>, for <c>--mode</c>.</summary>
    /// <param name="spec">The value of <c>--mode</c> after <c>upstream:</c>.</param>
    public static bool TryParse(string spec, [NotNullWhen(true)] out UpstreamProxy? proxy, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(spec);
        proxy = null;
        if (!Uri.TryCreate(spec, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host) || uri.Scheme is not ("http" or "https"))
        {
            error = $"'{spec}' is not a proxy URL; upstream mode takes http://[user:password@]host:port, e.g. upstream:http://proxy.example:3128.";
            return false;
        }

        if (uri.Scheme == "https")
        {
            error = $"'{spec}' asks for TLS to the upstream proxy, which WsWeb does not speak; give it as http:// (tunnels to https servers are TLS end to end all the same).";
            return false;
        }

        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            error = $"'{spec}' has more than a host and port; a proxy is named by those alone.";
            return false;
        }

        var credentials = uri.UserInfo.Length == 0 ? null : Uri.UnescapeDataString(uri.UserInfo);
        proxy = new UpstreamProxy(uri.IdnHost.Trim('[', ']'), uri.Port, credentials);
        error = null;
        return true;
    }
}
