using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>Where a proxied request goes: from the CONNECT tunnel, or from an absolute-form request target.</summary>
internal readonly record struct ProxyTarget(string Scheme, string Host, int Port, string PathAndQuery)
{
    public bool UseTls => Scheme == "https";

    /// <summary>
    /// A proxy forwards the request target as it came: System.Uri would otherwise resolve "/a/../b",
    /// decode "%41" and turn "\" into "/", and the server would get a different request than the one recorded.
    /// </summary>
    private static readonly UriCreationOptions AsSent = new() { DangerousDisablePathAndQueryCanonicalization = true };

    /// <summary>The URI handed to <see cref="UpstreamConnector"/>: always http, TLS is done in its connect callback.</summary>
    public Uri ConnectUri => new($"http://{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}{PathAndQuery}", AsSent);

    public static bool TryResolve(HttpContext context, ProxyConnectionFeature connection, out ProxyTarget target, out string? error)
    {
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        error = null;
        if (connection.TunnelHost is { } host)
        {
            var path = rawTarget.StartsWith('/') ? rawTarget
                : Uri.TryCreate(rawTarget, AsSent, out var inner) && inner.IsAbsoluteUri ? inner.PathAndQuery
                : "/";
            target = new ProxyTarget(connection.IsTls ? "https" : "http", host, connection.TunnelPort, path);
            return true;
        }

        if (Uri.TryCreate(rawTarget, AsSent, out var uri) && uri.IsAbsoluteUri && uri.Scheme is "http" or "https" or "ws" or "wss")
        {
            var scheme = uri.Scheme is "https" or "wss" ? "https" : "http";
            target = new ProxyTarget(scheme, uri.IdnHost.Trim('[', ']'), uri.Port, uri.PathAndQuery);
            return true;
        }

        target = default;
        error = $"WsWeb is a proxy, and '{rawTarget}' is not an absolute URL. Configure WsWeb as your HTTP proxy "
            + "(it accepts CONNECT and absolute-form requests such as 'GET http://example.com/ HTTP/1.1'); the dashboard is on the web port.";
        return false;
    }
}
