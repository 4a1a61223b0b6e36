using System.Diagnostics.CodeAnalysis;

namespace WsWeb.Proxy;

/// <summary>
/// The server of reverse-proxy mode (mitmproxy's <c>--mode reverse:URL</c>): requests that arrive in origin form
/// (<c>GET /chat</c>, as a client sends them to a server) go to it. ws and wss are spellings of http and https.
/// </summary>
/// <param name="Scheme">"http" or "https": how WsWeb connects to the server, whatever the client used.</param>
public sealed record ReverseTarget(string Scheme, string Host, int Port)
{
    /// <summary>host:port as a Host header writes it: IPv6 in brackets, the scheme's default port left out.</summary>
    public string Authority => WsWeb.Core.Flows.HttpRequestData.AuthorityOf(Scheme, Host, Port);

    public override string ToString() => $"{Scheme}://{Authority}";

    /// <summary>Reads mitmproxy's spelling, <c>reverse:SCHEME://HOST[:PORT]</c>, for <c>--mode</c>.</summary>
    /// <param name="spec">The value of <c>--mode</c> after <c>reverse:</c>.</param>
    public static bool TryParse(string spec, [NotNullWhen(true)] out ReverseTarget? target, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(spec);
        target = null;
        if (!Uri.TryCreate(spec, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "ws" or "wss") || string.IsNullOrEmpty(uri.Host))
        {
            error = $"'{spec}' is not a server URL; reverse mode takes http://, https://, ws:// or wss:// and a host, e.g. reverse:wss://example.com.";
            return false;
        }

        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
        {
            // As mitmproxy: the server is a scheme, a host and a port; the path is the client's.
            error = $"'{spec}' has more than a scheme, host and port; the client's request path goes to the server as it is.";
            return false;
        }

        target = new ReverseTarget(uri.Scheme is "https" or "wss" ? "https" : "http", uri.IdnHost.Trim('[', ']'), uri.Port);
        error = null;
        return true;
    }
}
