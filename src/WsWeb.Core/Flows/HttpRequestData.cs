namespace WsWeb.Core.Flows;

/// <summary>The request of a flow (mitmproxy's <c>http.Request</c>).</summary>
public sealed class HttpRequestData
{
    public required string Method { get; set; }

    /// <summary>"http" or "https".</summary>
    public required string Scheme { get; set; }

    public required string Host { get; set; }

    public required int Port { get; set; }

    /// <summary>Path and query as sent ("/chat?room=1").</summary>
    public required string Path { get; set; }

    public string HttpVersion { get; set; } = "HTTP/1.1";

    public HeaderList Headers { get; init; } = [];

    /// <summary>The body as far as it was recorded (see <see cref="ContentTruncated"/>), or null for none.</summary>
    public byte[]? Content { get; set; }

    public long ContentLength { get; set; }

    public bool ContentTruncated { get; set; }

    public double TimestampStart { get; set; }

    public double? TimestampEnd { get; set; }

    /// <summary>Authority as used in URLs: the default port is left out.</summary>
    public string Authority => AuthorityOf(Scheme, Host, Port);

    public string Url => $"{Scheme}://{Authority}{Path}";

    /// <summary>The URL with ws/wss schemes, for WebSocket flows.</summary>
    public string WebSocketUrl => $"{(Scheme == "https" ? "wss" : "ws")}://{Authority}{Path}";

    /// <summary>host:port as a URL or Host header writes it: IPv6 in brackets, the scheme's default port (or none) left out.</summary>
    internal static string AuthorityOf(string scheme, string host, int port) => (scheme, port) is ("http", 80) or ("https", 443) || port == 0
        ? HostForUrl(host)
        : $"{HostForUrl(host)}:{port}";

    /// <summary>A host as it stands in a URL or an authority: an IPv6 literal in brackets.</summary>
    internal static string HostForUrl(string host) => host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;
}
