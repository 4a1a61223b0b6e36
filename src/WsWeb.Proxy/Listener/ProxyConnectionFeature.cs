using WsWeb.Core;
using WsWeb.Core.Flows;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Set on every connection that arrived on the proxy listener, so the request pipeline can tell proxy
/// traffic from dashboard traffic, and carrying what the CONNECT tunnel (if any) established.
/// </summary>
internal sealed class ProxyConnectionFeature
{
    /// <summary>The CONNECT target, or null for absolute-form requests.</summary>
    public string? TunnelHost { get; set; }

    public int TunnelPort { get; set; }

    /// <summary>The client's side of the connection, shared by every flow on it.</summary>
    public ConnectionInfo Client { get; } = new();

    public bool IsTls => Client.TlsEstablished;

    /// <summary>
    /// The connection's innermost stream and pipes (after TLS, when intercepted), when the proxy's own
    /// transport accepted it; null on Kestrel's socket transport, where only the upgrade stream is safe.
    /// </summary>
    public RawTransport? Raw { get; set; }

    /// <summary>The connection on the proxy's own transport; null on Kestrel's socket transport.</summary>
    public StreamConnection? Connection { get; set; }

    /// <summary>The reader Kestrel parses this connection's requests from; null before the listener hands the connection on.</summary>
    public RequestHeadReader? Heads { get; set; }

    /// <summary>
    /// The application has seen a request on this connection (<see cref="ProxyRequestGate"/>). With <see cref="Heads"/>
    /// not reading a head, a refusal Kestrel reports now is about that request's body, not a request of its own.
    /// </summary>
    public bool ApplicationSawRequest { get; set; }

    /// <summary>Why Kestrel refused the current request before the application saw it; set while it writes its empty reply.</summary>
    public RefusedRequest? Refused { get; set; }

    /// <summary>The client's connection was aborted (a write to it failed). RequestAborted follows, a little later.</summary>
    public bool ClientGone => Connection?.IsAborted == true;

    /// <summary>Records a request the listener refused before it was forwarded, as an ended flow with its error.</summary>
    public void RecordRefusal(FlowStore store, TimeProvider time, HttpRequestData request, string error)
    {
        var now = Timestamps.Now(time);
        request.TimestampStart = now;
        var flow = new HttpFlow(request, now) { ClientConn = Client, Error = error };
        store.Add(flow);
        store.FlowEnded(flow);
    }
}
