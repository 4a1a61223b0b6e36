using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Flows;

/// <summary>
/// One HTTP exchange through the proxy (mitmproxy's <c>http.HTTPFlow</c>). A WebSocket connection is
/// a flow whose handshake got a 101 and whose <see cref="WebSocket"/> is set.
/// </summary>
public sealed class HttpFlow
{
    private volatile bool _isLive;

    public HttpFlow(HttpRequestData request, double timestampCreated)
    {
        ArgumentNullException.ThrowIfNull(request);
        Request = request;
        TimestampCreated = timestampCreated;
    }

    /// <summary>A unique id (a GUID string, as mitmproxy uses).</summary>
    public string Id { get; init; } = Guid.NewGuid().ToString();

    public HttpRequestData Request { get; }

    public HttpResponseData? Response { get; set; }

    public ConnectionInfo ClientConn { get; init; } = new();

    public ConnectionInfo ServerConn { get; init; } = new();

    /// <summary>Set once the upgrade to WebSocket succeeded.</summary>
    public WebSocketData? WebSocket { get; set; }

    /// <summary>Why the flow failed (unreachable upstream, protocol error…), or null.</summary>
    public string? Error { get; set; }

    public double TimestampCreated { get; init; }

    /// <summary>True while the proxy still relays this flow; imported and finished flows are not live.</summary>
    public bool IsLive
    {
        get => _isLive;
        set => _isLive = value;
    }

    /// <summary>True for flows read from a file rather than captured by this process.</summary>
    public bool IsImported { get; init; }

    /// <summary>
    /// "request" for a flow whose request WsWeb sent again (a replay), as mitmproxy's <c>is_replay</c>; mitmproxy also
    /// knows "response" (server replay), which WsWeb does not do but keeps when it imports such a flow.
    /// </summary>
    public string? IsReplay { get; init; }

    /// <summary>The id of the flow this one replays, when <see cref="IsReplay"/> is "request" and the original was known.</summary>
    public string? ReplayOf { get; init; }

    /// <summary>Free-form user marker, as mitmproxy's <c>marked</c>.</summary>
    public string Marked { get; set; } = "";

    public bool IsWebSocket => WebSocket is not null;

    /// <summary>True while the flow is in a <see cref="FlowStore"/>.</summary>
    internal bool IsStored
    {
        get => _isStored;
        set => _isStored = value;
    }

    private volatile bool _isStored;

    /// <summary>Body bytes of this flow its store counts toward its budget (guarded by the store's lock).</summary>
    internal long CountedHttpBytes { get; set; }


    public override string ToString() => $"{Request.Method} {Request.Url} -> {Response?.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "…"}";
}
