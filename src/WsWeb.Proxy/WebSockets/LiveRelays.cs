using System.Collections.Concurrent;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

/// <summary>The relays running now, keyed by flow id: the implementation of <see cref="IWebSocketControl"/>.</summary>
internal sealed class LiveRelays : IWebSocketControl
{
    private readonly ConcurrentDictionary<string, WebSocketRelay> _relays = new(StringComparer.Ordinal);

    public int Count => _relays.Count;

    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Set when shutdown began: new WebSockets are refused, so none starts after the 1001s went out.</summary>
    public bool ShuttingDown => _stopping.IsCancellationRequested;

    /// <summary>
    /// Cancelled when shutdown begins, before the 1001s go out (see <see cref="RelayShutdown"/>): whatever holds a relay's
    /// message (intercept) lets go of it here, or its pump could not read the peer's answer to the close.
    /// </summary>
    public CancellationToken Stopping => _stopping.Token;

    public void BeginShutdown() => _stopping.Cancel();

    public void Add(WebSocketRelay relay) => _relays[relay.Flow.Id] = relay;

    public void Remove(WebSocketRelay relay) => _relays.TryRemove(new KeyValuePair<string, WebSocketRelay>(relay.Flow.Id, relay));

    public IReadOnlyCollection<WebSocketRelay> Snapshot() => [.. _relays.Values];

    public bool IsLive(HttpFlow flow) => Find(flow) is { IsRunning: true };

    public WebSocketMessage Inject(HttpFlow flow, bool toClient, ReadOnlyMemory<byte> content, bool isText) =>
        Require(flow).Inject(toClient, content, isText, awaitCompletion: false).Message;

    public Task<WebSocketMessage> InjectAsync(HttpFlow flow, bool toClient, ReadOnlyMemory<byte> content, bool isText, CancellationToken cancellationToken = default) =>
        Require(flow).Inject(toClient, content, isText, awaitCompletion: true).Completion!.Task.WaitAsync(cancellationToken);

    public Task CloseAsync(HttpFlow flow, CloseTarget target, int code, string? reason, CancellationToken cancellationToken = default) =>
        Require(flow).CloseAsync(target, code, reason, cancellationToken);

    /// <summary>
    /// Kills a live WebSocket's relay or, for a flow still under way that is no relayed WebSocket (a plain exchange, a
    /// handshake waiting for its answer, a replay's response arriving), aborts its connection, as mitmproxy kills any
    /// live flow.
    /// </summary>
    public void Kill(HttpFlow flow)
    {
        if (Find(flow) is not { IsRunning: true } && flow.IsLive && _exchanges.TryGetValue(flow.Id, out var abort))
        {
            flow.Error ??= "Connection killed.";
            abort();
            return;
        }

        Require(flow).Kill();
    }

    private readonly ConcurrentDictionary<string, Action> _exchanges = new(StringComparer.Ordinal);

    /// <summary>Lets <see cref="Kill"/> end <paramref name="flow"/>'s exchange by <paramref name="abort"/> until disposed.</summary>
    public IDisposable TrackExchange(HttpFlow flow, Action abort)
    {
        ArgumentNullException.ThrowIfNull(flow);
        _exchanges[flow.Id] = abort;
        return new Tracked(this, new KeyValuePair<string, Action>(flow.Id, abort));
    }

    private sealed class Tracked(LiveRelays owner, KeyValuePair<string, Action> entry) : IDisposable
    {
        public void Dispose() => owner._exchanges.TryRemove(entry);
    }

    /// <summary>True once the flow's client (or server) was sent a close, or the flow is not live.</summary>
    public bool CloseSentTo(HttpFlow flow, bool toClient) => Find(flow) is not { IsRunning: true } relay || relay.CloseSentTo(toClient);

    private WebSocketRelay? Find(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        return _relays.GetValueOrDefault(flow.Id);
    }

    private WebSocketRelay Require(HttpFlow flow) =>
        Find(flow) is { IsRunning: true } relay
            ? relay
            : throw new InvalidOperationException(NotLive(flow));

    /// <summary>Why there is no relay to act on for <paramref name="flow"/>: the API's 409 says the same.</summary>
    internal static string NotLive(HttpFlow flow) => flow.IsWebSocket
        ? flow.IsImported
            ? $"Flow {flow.Id} was imported from a file; it has no connection to act on."
            : $"Flow {flow.Id} is closed; its WebSocket is no longer relayed."
        : $"Flow {flow.Id} is not a WebSocket flow.";
}
