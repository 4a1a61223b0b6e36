using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>Where a proxied request goes: from the CONNECT tunnel, or from an absolute-form request target.</summary>
/// <param name="TlsName">
/// The name the client asked for in its TLS handshake (SNI) when that is not <paramref name="Host"/>: a client that
/// resolved the name itself tunnels to an IP. As mitmproxy does, the server gets that name as SNI and its
/// certificate is checked against it, so name-based virtual hosts answer as they would without the proxy.
/// </param>
/// <param name="Reverse">The request came in origin form to a reverse proxy (<see cref="ReverseTarget"/>): it addressed WsWeb, not the server.</param>
internal readonly record struct ProxyTarget(string Scheme, string Host, int Port, string PathAndQuery, string? TlsName = null, bool Reverse = false)
{
    public bool UseTls => Scheme == "https";

    /// <summary>The name for SNI and the certificate check.</summary>
    public string ServerName => TlsName ?? Host;

    /// <summary>
    /// A proxy forwards the request target as it came: System.Uri would otherwise resolve "/a/../b",
    /// decode "%41" and turn "\" into "/", and the server would get a different request than the one recorded.
    /// </summary>
    private static readonly UriCreationOptions AsSent = new() { DangerousDisablePathAndQueryCanonicalization = true };

    /// <summary>
    /// The URI handed to <see cref="UpstreamConnector"/>: always http, TLS is done in its connect callback. Its host is
    /// the connection pool's key, so a server name of its own gets a pool of its own (see <see cref="UpstreamConnector.PoolHost"/>).
    /// </summary>
    public Uri ConnectUri
    {
        get
        {
            var host = TlsName is null ? Host : UpstreamConnector.PoolHost(Host, TlsName);
            return new($"http://{WsWeb.Core.Flows.HttpRequestData.HostForUrl(host)}:{Port}{PathAndQuery}", AsSent);
        }
    }

    /// <summary>Tells the connector what to dial and which name to ask for, when the URI's host is only a pool key.</summary>
    /// <remarks>Call after the client's headers are copied: a request without a Host of its own (HTTP/1.0) would get the pool key.</remarks>
    public void Describe(HttpRequestMessage request)
    {
        if (TlsName is null)
        {
            return;
        }

        request.Options.Set(UpstreamConnector.DialKey, (Host, TlsName));
        if (string.IsNullOrEmpty(request.Headers.Host))
        {
            // What HttpClient would have written from the URI before the URI's host became a pool key.
            request.Headers.Host = Authority;
        }
    }

    /// <summary>host:port as a Host header writes it: IPv6 in brackets, the scheme's default port left out.</summary>
    private string Authority => WsWeb.Core.Flows.HttpRequestData.AuthorityOf(Scheme, Host, Port);

    /// <summary>
    /// The request target a server gets for an absolute URL: its path and query as sent, and "/" for an empty path, as
    /// RFC 9112 §3.2.1 asks and mitmproxy does ("http://a.example?x" is "GET /?x"). Sent empty, "GET  HTTP/1.1" is
    /// another request to a server than the one recorded.
    /// </summary>
    private static string OriginForm(Uri uri)
    {
        var pathAndQuery = uri.PathAndQuery;
        return pathAndQuery.StartsWith('/') ? pathAndQuery : "/" + pathAndQuery;
    }

    /// <summary>
    /// The target an absolute http, https, ws or wss URL names (ws and wss as http and https), its path and query as
    /// written: an absolute-form request's, or one --map-remote made.
    /// </summary>
    public static bool TryFromUrl(string url, out ProxyTarget target)
    {
        if (Uri.TryCreate(url, AsSent, out var uri) && uri.IsAbsoluteUri && uri.Scheme is "http" or "https" or "ws" or "wss")
        {
            var scheme = uri.Scheme is "https" or "wss" ? "https" : "http";
            target = new ProxyTarget(scheme, uri.IdnHost.Trim('[', ']'), uri.Port, OriginForm(uri));
            return true;
        }

        target = default;
        return false;
    }

    /// <param name="reverse">The server of reverse mode, which origin-form requests outside a tunnel go to; null in regular mode.</param>
    public static bool TryResolve(HttpContext context, ProxyConnectionFeature connection, ReverseTarget? reverse, out ProxyTarget target, out string? error)
    {
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        error = null;
        if (connection.TunnelHost is { } host)
        {
            var path = rawTarget.StartsWith('/') ? rawTarget
                : Uri.TryCreate(rawTarget, AsSent, out var inner) && inner.IsAbsoluteUri ? OriginForm(inner)
                : "/";
            var sni = connection.IsTls ? connection.Client.Sni : null;
            var tlsName = sni is not null && !string.Equals(sni, host, StringComparison.OrdinalIgnoreCase) ? sni : null;
            target = new ProxyTarget(connection.IsTls ? "https" : "http", host, connection.TunnelPort, path, tlsName);
            return true;
        }

        if (TryFromUrl(rawTarget, out target))
        {
            return true;
        }

        if (reverse is not null && rawTarget.StartsWith('/'))
        {
            target = new ProxyTarget(reverse.Scheme, reverse.Host, reverse.Port, rawTarget, Reverse: true);
            return true;
        }

        target = default;
        error = $"WsWeb is a proxy, and '{rawTarget}' is not an absolute URL. Configure WsWeb as your HTTP proxy "
            + "(it accepts CONNECT and absolute-form requests such as 'GET http://example.com/ HTTP/1.1'); the dashboard is on the web port.";
        return false;
    }
}
