using System.Collections.Immutable;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Flows;

/// <summary>
/// The in-memory, thread-safe record of every flow, with an event stream for the API and the hub.
/// </summary>
/// <remarks>
/// Subscribers are called synchronously on the relay's thread, so they must only enqueue: a slow
/// subscriber would otherwise slow the proxy. Subscriber lists are copy-on-write so publishing
/// takes no lock.
/// </remarks>
public sealed class FlowStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, HttpFlow> _byId = new(StringComparer.Ordinal);
    private readonly LinkedList<HttpFlow> _order = new();
    private readonly Dictionary<string, LinkedListNode<HttpFlow>> _nodes = new(StringComparer.Ordinal);
    private ImmutableArray<Action<FlowEvent>> _subscribers = [];

    public FlowStore(FlowStoreOptions? options = null)
    {
        Options = options ?? new FlowStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxFlows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxMessagesPerFlow, 1);
    }

    public FlowStoreOptions Options { get; }

    public int Count
    {
        get { lock (_gate) { return _byId.Count; } }
    }

    /// <summary>Creates the message list of a WebSocket flow with this store's retention bound.</summary>
    public WebSocketData CreateWebSocketData() => new(Options.MaxMessagesPerFlow, Options.MaxBytesPerFlow);

    /// <summary>
    /// Content bytes retained by the stored flows: WebSocket messages, and the request and response bodies recorded
    /// on every flow (up to the capture limit each), all under <see cref="FlowStoreOptions.MaxTotalBytes"/>.
    /// </summary>
    public long RetainedBytes => Interlocked.Read(ref _retainedBytes);

    private long _retainedBytes;

    /// <summary>Registers a listener; dispose the result to stop listening.</summary>
    public IDisposable Subscribe(Action<FlowEvent> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ImmutableInterlocked.Update(ref _subscribers, static (list, l) => list.Add(l), listener);
        return new Subscription(this, listener);
    }

    public void Add(HttpFlow flow)
    {
        if (!TryAdd(flow))
        {
            throw new InvalidOperationException($"A flow with id {flow.Id} is already stored.");
        }
    }

    /// <summary>Adds the flow unless one with its id is stored already; a live flow may be evicted to make room (imports use <see cref="TryAddFinished"/>, which never does that).</summary>
    public bool TryAdd(HttpFlow flow) => AddCore(flow, evictLive: true, evicted: null) == AddOutcome.Added;

    /// <summary>
    /// Adds a finished flow (an import) unless one with its id is stored already, or making room under
    /// <see cref="FlowStoreOptions.MaxFlows"/> would take a live flow: the store is full of them.
    /// </summary>
    /// <param name="evicted">Gets the flows this add evicted, for --max-flows or for the byte budget.</param>
    /// <remarks>
    /// Whether a finished flow is there to make room for it is decided under the same lock that evicts it and adds the
    /// new one. A caller that looked first (Count, Snapshot) and added after could see a finished flow that a capture
    /// starting meanwhile evicted (its own add takes the oldest finished flow), and then this add would take a live one.
    /// </remarks>
    public AddOutcome TryAddFinished(HttpFlow flow, ICollection<HttpFlow> evicted)
    {
        ArgumentNullException.ThrowIfNull(evicted);
        return AddCore(flow, evictLive: false, evicted);
    }

    private AddOutcome AddCore(HttpFlow flow, bool evictLive, ICollection<HttpFlow>? evicted)
    {
        ArgumentNullException.ThrowIfNull(flow);
        List<HttpFlow>? removed = null;
        lock (_gate)
        {
            if (_byId.ContainsKey(flow.Id))
            {
                return AddOutcome.AlreadyPresent;
            }

            if (!evictLive && _byId.Count >= Options.MaxFlows && FindFinished(flow) is null)
            {
                return AddOutcome.NoRoom;
            }

            _byId.Add(flow.Id, flow);
            _nodes[flow.Id] = _order.AddLast(flow);
            flow.IsStored = true;
            if (flow.WebSocket is { } ws)
            {
                // Imported flows arrive with their messages already recorded.
                Interlocked.Add(ref _retainedBytes, ws.RetainedBytes);
            }

            // And with their bodies; a captured flow has none yet (FlowUpdated and FlowEnded count them as they come).
            flow.CountedHttpBytes = HttpContentBytes(flow);
            Interlocked.Add(ref _retainedBytes, flow.CountedHttpBytes);

            while (_byId.Count > Options.MaxFlows)
            {
                var victim = FindEvictionCandidate(flow);
                RemoveLocked(victim);
                (removed ??= []).Add(victim);
            }
        }

        Publish(new FlowEvent(FlowEventKind.FlowStarted, flow));
        foreach (var victim in removed ?? [])
        {
            evicted?.Add(victim);
            Publish(new FlowEvent(FlowEventKind.FlowRemoved, victim));
        }

        // An imported flow brings its content at once: the total budget holds for it as for recorded messages.
        if (Interlocked.Read(ref _retainedBytes) > Options.MaxTotalBytes)
        {
            EvictForBytes(flow, evicted);
        }

        return AddOutcome.Added;
    }

    public HttpFlow? Get(string id)
    {
        lock (_gate)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    public bool Remove(string id)
    {
        HttpFlow? flow;
        lock (_gate)
        {
            if (!_byId.TryGetValue(id, out flow))
            {
                return false;
            }

            RemoveLocked(flow);
        }

        Publish(new FlowEvent(FlowEventKind.FlowRemoved, flow));
        return true;
    }

    /// <summary>All flows, oldest first.</summary>
    public List<HttpFlow> Snapshot()
    {
        lock (_gate)
        {
            return [.. _order];
        }
    }

    /// <summary>Flows newest first, optionally filtered, skipping <paramref name="skip"/> matches.</summary>
    /// <remarks>The predicate runs outside the store's lock: a message filter may walk every message of every flow.</remarks>
    public List<HttpFlow> Query(Func<HttpFlow, bool>? predicate = null, int skip = 0, int take = int.MaxValue)
    {
        var result = new List<HttpFlow>();
        var flows = Snapshot();
        for (var i = flows.Count - 1; i >= 0 && result.Count < take; i--)
        {
            if (predicate is null || predicate(flows[i]))
            {
                if (skip > 0)
                {
                    skip--;
                    continue;
                }

                result.Add(flows[i]);
            }
        }

        return result;
    }

    /// <summary>Records a message on a WebSocket flow and tells subscribers.</summary>
    public void AddMessage(HttpFlow flow, WebSocketMessage message)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var ws = flow.WebSocket ?? throw new InvalidOperationException("The flow is not a WebSocket flow.");

        // Both directions record concurrently; publishing under the flow's own monitor keeps each flow's
        // MessageAdded events in index order without a store-wide lock on the hot path.
        long delta;
        lock (ws)
        {
            delta = ws.Add(message);
            Publish(new FlowEvent(FlowEventKind.MessageAdded, flow, message));
        }

        // A flow removed meanwhile was detached from the budget: its list reports no change.
        if (delta != 0 && Interlocked.Add(ref _retainedBytes, delta) > Options.MaxTotalBytes)
        {
            EvictForBytes(flow);
        }
    }

    public void MessageChanged(HttpFlow flow, WebSocketMessage message) =>
        Publish(new FlowEvent(FlowEventKind.MessageChanged, flow, message));

    /// <summary>Tells subscribers the flow changed, and counts bodies recorded on it meanwhile toward the budget.</summary>
    public void FlowUpdated(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var overBudget = CountHttpContent(flow);
        Publish(new FlowEvent(FlowEventKind.FlowUpdated, flow));
        if (overBudget)
        {
            EvictForBytes(flow);
        }
    }

    public void FlowEnded(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        flow.IsLive = false;
        var overBudget = CountHttpContent(flow);
        Publish(new FlowEvent(FlowEventKind.FlowEnded, flow));
        if (overBudget)
        {
            EvictForBytes(flow);
        }
    }

    /// <summary>
    /// Brings the flow's share of the budget up to the bodies it now holds. Bodies are set on the flow by whoever
    /// records them (the forwarder, as each body ends), and FlowUpdated or FlowEnded always follows.
    /// </summary>
    /// <returns>True when the store is now over its byte budget.</returns>
    private bool CountHttpContent(HttpFlow flow)
    {
        long total;
        lock (_gate)
        {
            // A flow evicted meanwhile was taken off the budget with what it had: it no longer counts.
            if (!_byId.TryGetValue(flow.Id, out var stored) || !ReferenceEquals(stored, flow))
            {
                return false;
            }

            var bytes = HttpContentBytes(flow);
            var delta = bytes - flow.CountedHttpBytes;
            if (delta == 0)
            {
                return false;
            }

            flow.CountedHttpBytes = bytes;
            total = Interlocked.Add(ref _retainedBytes, delta);
        }

        return total > Options.MaxTotalBytes;
    }

    private static long HttpContentBytes(HttpFlow flow) =>
        (flow.Request.Content?.LongLength ?? 0) + (flow.Response?.Content?.LongLength ?? 0);

    /// <summary>Told when a subscriber throws; the event still reaches the other subscribers.</summary>
    public Action<Exception>? SubscriberFailed { get; set; }

    private void Publish(in FlowEvent flowEvent)
    {
        foreach (var subscriber in _subscribers)
        {
            try
            {
                subscriber(flowEvent);
            }
            catch (Exception ex)
            {
                // A broken listener must not break the relay thread that published, nor starve the others.
                SubscriberFailed?.Invoke(ex);
            }
        }
    }

    private void EvictForBytes(HttpFlow current, ICollection<HttpFlow>? evictedFor = null)
    {
        // Evict finished flows, oldest first, down to 90% of the budget (the slack keeps this off the per-message path).
        var target = Options.MaxTotalBytes - Options.MaxTotalBytes / 10;
        List<HttpFlow>? evicted = null;
        lock (_gate)
        {
            for (var node = _order.First; node is not null && Interlocked.Read(ref _retainedBytes) > target;)
            {
                var next = node.Next;
                if (!node.Value.IsLive && !ReferenceEquals(node.Value, current))
                {
                    RemoveLocked(node.Value);
                    (evicted ??= []).Add(node.Value);
                }

                node = next;
            }

            // Live flows are never evicted, and each may keep MaxBytesPerFlow: enough of them would hold many times the
            // budget. So when evicting what has finished is not enough, their oldest messages go, as the per-flow bound
            // trims them, from each live flow in proportion to what it holds.
            var excess = Interlocked.Read(ref _retainedBytes) - target;
            if (excess > 0)
            {
                TrimLiveFlowsLocked(excess);
            }
        }

        foreach (var victim in evicted ?? [])
        {
            evictedFor?.Add(victim);
            Publish(new FlowEvent(FlowEventKind.FlowRemoved, victim));
        }
    }

    private void TrimLiveFlowsLocked(long excess)
    {
        var live = new List<WebSocketData>();
        long held = 0;
        foreach (var flow in _order)
        {
            if (flow.IsLive && flow.WebSocket is { } ws && ws.RetainedBytes is > 0 and var bytes)
            {
                live.Add(ws);
                held += bytes;
            }
        }

        foreach (var ws in live)
        {
            // Rounded up, so the shares cover the excess; a flow keeps its newest message whatever its share.
            var share = (long)Math.Ceiling((double)excess * ws.RetainedBytes / held);
            Interlocked.Add(ref _retainedBytes, -ws.TrimOldest(share));
        }
    }

    private HttpFlow FindEvictionCandidate(HttpFlow added) =>
        // Prefer the oldest finished flow; a live connection is only evicted when everything is live.
        FindFinished(added) ?? OldestOther(added);

    /// <summary>The oldest finished flow other than <paramref name="added"/> (never its own victim), or null.</summary>
    private HttpFlow? FindFinished(HttpFlow added)
    {
        for (var node = _order.First; node is not null; node = node.Next)
        {
            if (!node.Value.IsLive && !ReferenceEquals(node.Value, added))
            {
                return node.Value;
            }
        }

        return null;
    }

    private HttpFlow OldestOther(HttpFlow added) =>
        ReferenceEquals(_order.First!.Value, added) ? _order.First.Next!.Value : _order.First.Value;

    private void RemoveLocked(HttpFlow flow)
    {
        flow.IsStored = false;
        if (flow.WebSocket is { } ws)
        {
            Interlocked.Add(ref _retainedBytes, -ws.Detach());
        }

        Interlocked.Add(ref _retainedBytes, -flow.CountedHttpBytes);
        flow.CountedHttpBytes = 0;

        _byId.Remove(flow.Id);
        if (_nodes.Remove(flow.Id, out var node))
        {
            _order.Remove(node);
        }
    }

    private sealed class Subscription(FlowStore store, Action<FlowEvent> listener) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ImmutableInterlocked.Update(ref store._subscribers, static (list, l) => list.Remove(l), listener);
            }
        }
    }
}

/// <summary>What <see cref="FlowStore.TryAddFinished"/> did with a flow.</summary>
public enum AddOutcome
{
    Added,

    /// <summary>A flow with its id is stored already; that one is kept.</summary>
    AlreadyPresent,

    /// <summary>The store is full of live flows, and none of them is evicted for it.</summary>
    NoRoom,
}
