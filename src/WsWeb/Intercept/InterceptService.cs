using System.Runtime.CompilerServices;
using WsWeb.Core;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Intercept;

/// <summary>The intercept filter in force, compiled.</summary>
internal sealed record InterceptSettings(FlowFilter Filter, TimeSpan? Timeout, bool DropOnTimeout);

/// <summary>One message waiting for a user's decision.</summary>
internal sealed class HeldMessage
{
    private string? _resolution;

    public HeldMessage(HttpFlow flow, WebSocketMessage message, long sequence, double heldAt, double? timeoutAt)
    {
        Flow = flow;
        Message = message;
        Sequence = sequence;
        HeldAt = heldAt;
        TimeoutAt = timeoutAt;
    }

    public HttpFlow Flow { get; }

    public WebSocketMessage Message { get; }

    /// <summary>Hold order across all flows, so the list shows messages in the order they were caught.</summary>
    public long Sequence { get; }

    public double HeldAt { get; }

    public double? TimeoutAt { get; }

    /// <summary>Completes when the message may go on (released, edited, dropped, timed out or abandoned).</summary>
    public TaskCompletionSource Decision { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ITimer? Timer { get; set; }

    /// <summary>
    /// The resolution of the decision that claimed this message, null while undecided. Set in the claim itself, so a
    /// caller that lost the race can name the winner's outcome at once, before the winner has recorded it anywhere else.
    /// </summary>
    public string? Resolution => Volatile.Read(ref _resolution);

    /// <summary>True for the one caller that gets to decide; a user, a script and a timeout may race.</summary>
    public bool TryClaim(string resolution) => Interlocked.CompareExchange(ref _resolution, resolution, null) is null;
}

/// <summary>
/// Intercept state: the filter, the held messages in hold order, and the decisions on them. The relay
/// side lives in <see cref="InterceptAddon"/>; this class is what the API and the addon share.
/// </summary>
internal sealed class InterceptService(FlowStore store, HoldResolutions resolutions, TimeProvider time)
{
    private static readonly object Marker = new();

    private readonly object _gate = new();
    private readonly SortedList<long, HeldMessage> _held = [];
    private readonly ConditionalWeakTable<WebSocketMessage, object> _forced = [];
    private volatile InterceptSettings? _settings;
    private long _sequence;
    private bool _stopping;

    public InterceptSettings? Settings => _settings;

    /// <summary>How many messages are held, by flow id: what the flow list marks.</summary>
    public Dictionary<string, int> HeldByFlow()
    {
        lock (_gate)
        {
            return _held.Values.GroupBy(h => h.Flow.Id).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        }
    }

    public int HeldCount
    {
        get { lock (_gate) { return _held.Count; } }
    }

    public void Set(InterceptSettings? settings) => _settings = settings;

    /// <summary>Marks a message to be held whatever the intercept filter says (a rule's hold action).</summary>
    public void RequestHold(WebSocketMessage message) => _forced.AddOrUpdate(message, Marker);

    public bool ShouldHold(HttpFlow flow, WebSocketMessage message) =>
        _forced.TryGetValue(message, out _) || (_settings is { } settings && settings.Filter.Matches(flow, message));

    public HeldMessage Hold(HttpFlow flow, WebSocketMessage message)
    {
        var timeout = _settings is { Timeout: { } t } s ? (Timeout: t, s.DropOnTimeout) : ((TimeSpan Timeout, bool DropOnTimeout)?)null;
        var now = Timestamps.Now(time);
        HeldMessage held;
        bool stopping;

        // Recorded before it is listed: a decision on it (which needs it listed) must not be overwritten by "held".
        resolutions.Set(message, HoldResolutions.Held);
        lock (_gate)
        {
            held = new HeldMessage(flow, message, ++_sequence, now, timeout is { } t2 ? now + t2.Timeout.TotalSeconds : null);
            _held.Add(held.Sequence, held);
            stopping = _stopping;
        }

        if (stopping)
        {
            // Caught after shutdown began: nobody will decide on it either (see DropAllForShutdown).
            TryResolve(held, drop: true, newContent: null, HoldResolutions.FlowEnded);
            return held;
        }

        store.MessageChanged(flow, message);
        if (timeout is { } expiry)
        {
            // The timer holds the entry alive only until it fires or the entry is resolved and disposes it.
            held.Timer = time.CreateTimer(
                static state =>
                {
                    var (service, entry, drop) = ((InterceptService, HeldMessage, bool))state!;
                    service.TryResolve(entry, drop: drop, newContent: null, drop ? HoldResolutions.TimeoutDropped : HoldResolutions.TimeoutReleased);
                },
                (this, held, expiry.DropOnTimeout),
                expiry.Timeout,
                Timeout.InfiniteTimeSpan);

            // Resolved between being listed and getting its timer: TryResolve saw no timer to dispose.
            if (held.Decision.Task.IsCompleted)
            {
                held.Timer.Dispose();
            }
        }

        return held;
    }

    public List<HeldMessage> Snapshot()
    {
        lock (_gate)
        {
            return [.. _held.Values];
        }
    }

    public HeldMessage? Find(string flowId, long index)
    {
        lock (_gate)
        {
            foreach (var held in _held.Values)
            {
                if (held.Message.Index == index && held.Flow.Id == flowId)
                {
                    return held;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Applies a decision and lets the relay go on; false if someone else decided first, whose decision
    /// <see cref="HeldMessage.Resolution"/> then names. The message leaves the list only once its resolution is
    /// recorded, so whoever no longer finds it listed reads the real outcome from <see cref="HoldResolutions"/>, never
    /// "held".
    /// </summary>
    public bool TryResolve(HeldMessage held, bool drop, byte[]? newContent, string resolution)
    {
        if (!held.TryClaim(resolution))
        {
            return false;
        }

        held.Timer?.Dispose();
        if (drop)
        {
            held.Message.Drop();
        }
        else if (newContent is not null)
        {
            // Setting Content keeps what arrived in OriginalContent, so the edit stays visible.
            held.Message.Content = newContent;
        }

        resolutions.Set(held.Message, resolution);
        lock (_gate)
        {
            _held.Remove(held.Sequence);
        }

        store.MessageChanged(held.Flow, held.Message);
        held.Decision.TrySetResult();
        return true;
    }

    /// <summary>
    /// Shutdown began: every held message is dropped, and so is any message caught from now on. A held message keeps
    /// its direction's pump waiting in the hook, so that pump would not read the peer's answer to the 1001 the proxy
    /// sends, and RelayShutdown would wait out its 5 s for it and then kill the connection. Dropped, not released:
    /// nobody approved it, and released it would race the 1001 to the peer, so whether it arrived would be chance.
    /// mitmproxy, on exit, kills its flows; held messages never reach the peer there either. The message stays on
    /// the flow as dropped, resolved "flow-ended" (the connection closed while it was held).
    /// </summary>
    public void DropAllForShutdown()
    {
        List<HeldMessage> held;
        lock (_gate)
        {
            _stopping = true;
            held = [.. _held.Values];
        }

        foreach (var entry in held)
        {
            TryResolve(entry, drop: true, newContent: null, HoldResolutions.FlowEnded);
        }
    }

    /// <summary>
    /// Forgets the held messages of a flow that ended; nobody can forward them any more, so they are recorded as
    /// dropped (they never reached the peer), like those DropAllForShutdown ends.
    /// </summary>
    public void AbandonFlow(HttpFlow flow)
    {
        foreach (var held in Snapshot())
        {
            if (ReferenceEquals(held.Flow, flow))
            {
                TryResolve(held, drop: true, newContent: null, HoldResolutions.FlowEnded);
            }
        }
    }
}
