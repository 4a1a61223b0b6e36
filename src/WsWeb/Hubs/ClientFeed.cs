using System.Threading.Channels;
using WsWeb.Api;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Intercept;
using WsWeb.Rules;

namespace WsWeb.Hubs;

/// <summary>
/// The bounded queue and sender of one hub connection. Relay threads only append to the pending batch
/// under a short lock (O(1), never waiting on the network); the connection's own sender loop swaps the
/// batch out once per tick, or sooner when it is full, and sends it. A connection that cannot keep up
/// loses events, never the proxy's time: past <see cref="FlowsHubOptions.QueueCapacity"/> new events are
/// discarded and the client is told where to catch up (<see cref="IFlowsClient.Gap"/>).
/// </summary>
/// <remarks>
/// Each connection has its own loop because sending to a connection whose transport buffer is full waits
/// until that client reads; a shared loop would let one stuck browser hold up everyone else's batches.
/// Memory per connection is bounded: at most <see cref="FlowsHubOptions.QueueCapacity"/> events and about
/// <see cref="FlowsHubOptions.QueueByteLimit"/> content bytes are held, counting both the pending batch and
/// the part of the batch being sent that SignalR has not taken yet; beyond that only SignalR's and the
/// kernel's fixed transport buffers hold data for a stuck client. The bytes are those a view of each queued
/// message carries (content and, once edited, original content), for added and changed messages alike, and a
/// message is recounted whenever a change to it is heard of while it waits: an add followed by a replace rule's
/// result, or a held message released with an edit, is counted at its size when sent, not when first queued.
/// </remarks>
internal sealed partial class ClientFeed
{
    private const string FlowsScope = "flows";
    private const string FlowScope = "flow";

    private readonly object _gate = new();
    private readonly FlowsHubOptions _options;
    private readonly HoldResolutions _resolutions;
    private readonly InterceptService _intercept;
    private readonly InterceptSettingsStore _interceptSettings;
    private readonly RuleStore _rules;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Action _abort = static () => { };

    // One pending wake-up at most: the writer only needs "look again", never a count.
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    private FeedBatch _pending = new();
    private FeedBatch _spare = new();
    private bool _hasWork;

    // Events held by this feed: the pending batch plus what the sender has not handed to SignalR yet.
    // The capacity bounds these, so a stuck connection holds at most QueueCapacity events in all.
    private int _queued;
    private long _queuedBytes;
    private long _dropped;
    private int _highWater;
    private long _highWaterBytes;
    private long _invocations;
    private long _messagesSent;
    private long _gapsSent;
    private Task _run = Task.CompletedTask;

    // Sender-only: flows whose last word to the client was a gap, by the lowest cursor sent. Until the next
    // MessagesAdded the client's hole runs from that cursor to wherever live delivery resumes, so a later batch
    // that only lost more adds of the same flow has nothing new to say (a lost change still does).
    private readonly Dictionary<string, long> _openGaps = new(StringComparer.Ordinal);

    // Set with the pending batch's RuleCounters and cleared when the batch is taken, so the relay thread that counts a
    // hit can skip the lock while a RuleHits is already due: a volatile read per subscribed page per hit.
    private volatile bool _countersDue;

    // Sender-only: the counters this connection was last sent, so RuleHits carries only the rules whose counters moved.
    private readonly Dictionary<string, RuleCounters> _sentCounters = new(StringComparer.Ordinal);

    public ClientFeed(
        string connectionId,
        FlowsHubOptions options,
        HoldResolutions resolutions,
        InterceptService intercept,
        InterceptSettingsStore interceptSettings,
        RuleStore rules,
        TimeProvider time,
        ILogger logger)
    {
        ConnectionId = connectionId;
        _options = options;
        _resolutions = resolutions;
        _intercept = intercept;
        _interceptSettings = interceptSettings;
        _rules = rules;
        _time = time;
        _logger = logger;
    }

    public string ConnectionId { get; }

    /// <summary>Subscription state of this connection, changed by its hub calls; the router keeps the routing maps in step.</summary>
    public object SubscriptionGate { get; } = new();

    public bool FlowsSubscribed { get; set; }

    public bool InterceptSubscribed { get; set; }

    /// <summary>
    /// Subscribed to intercept for the counts only (SubscribeInterceptCounts): a page that shows how many are held gets
    /// HeldCounts, a few bytes, instead of every held message's preview on every change.
    /// </summary>
    public bool InterceptCountsOnly { get; set; }

    public bool RulesSubscribed { get; set; }

    public HashSet<string> SubscribedFlows { get; } = new(StringComparer.Ordinal);

    /// <summary>Events held: pending plus not yet handed to SignalR; at most <see cref="FlowsHubOptions.QueueCapacity"/>.</summary>
    public int Queued
    {
        get { lock (_gate) { return _queued; } }
    }

    /// <summary>Content bytes of the held messages.</summary>
    public long QueuedBytes
    {
        get { lock (_gate) { return _queuedBytes; } }
    }

    /// <summary>The most events ever held at once; at most <see cref="FlowsHubOptions.QueueCapacity"/>.</summary>
    public int HighWater
    {
        get { lock (_gate) { return _highWater; } }
    }

    /// <summary>The most content bytes ever held at once; at most <see cref="FlowsHubOptions.QueueByteLimit"/> unless one event alone is larger.</summary>
    public long HighWaterBytes
    {
        get { lock (_gate) { return _highWaterBytes; } }
    }

    /// <summary>Events discarded because the queue was full (each is covered by a gap notice).</summary>
    public long Dropped
    {
        get { lock (_gate) { return _dropped; } }
    }

    public long Invocations => Interlocked.Read(ref _invocations);

    public long MessagesSent => Interlocked.Read(ref _messagesSent);

    public long GapsSent => Interlocked.Read(ref _gapsSent);

    /// <param name="abort">Closes the connection, for a client that stopped reading (see <see cref="FlowsHubOptions.StalledSendTimeout"/>).</param>
    public void Start(IFlowsClient client, Action abort)
    {
        _abort = abort;
        _run = Task.Run(() => RunAsync(client, _stop.Token));
    }

    /// <summary>Stops the sender; a send stuck on a full transport is abandoned, not awaited.</summary>
    public Task StopAsync()
    {
        _stop.Cancel();
        return _run;
    }

    public void AddMessage(HttpFlow flow, WebSocketMessage message)
    {
        lock (_gate)
        {
            var batch = FlowBatchLocked(flow);
            if (batch.GapCursor >= 0 && message.Index >= batch.GapCursor)
            {
                // Once a flow lost a message in this batch, its later ones follow it into the gap:
                // delivering them would put them ahead of the lost one.
                _dropped++;
                return;
            }

            var bytes = QueuedMessage.BytesOf(message);
            if (!HasRoomLocked(bytes))
            {
                DiscardLocked(batch, message.Index);
                return;
            }

            batch.Added.Add(new QueuedMessage(message, bytes));
            AcceptLocked(bytes);
        }
    }

    public void ChangeMessage(HttpFlow flow, WebSocketMessage message)
    {
        lock (_gate)
        {
            var batch = FlowBatchLocked(flow);
            if (batch.GapCursor >= 0 && message.Index >= batch.GapCursor)
            {
                // Covered by this batch's gap, but only if that gap is sent: the client may hold this message already.
                batch.ChangeDiscarded = true;
                _dropped++;
                return;
            }

            // A message still waiting here is sent in its state at send time, so the change is covered once it is
            // recounted: an edit may have made it much larger than when it was queued.
            var bytes = QueuedMessage.BytesOf(message);
            var added = batch.FindAdded(message.Index);
            if (added >= 0)
            {
                if (!TryRecountLocked(batch.Added[added].Bytes, bytes))
                {
                    // Not yet delivered, but a catch-up may have read it from the store before this change.
                    batch.ChangeDiscarded = true;
                    DiscardAddedFromLocked(batch, added);
                    return;
                }

                batch.Added[added] = batch.Added[added] with { Bytes = bytes };
                return;
            }

            if (batch.Changed is { } changed && changed.TryGetValue(message.Index, out var queued))
            {
                if (!TryRecountLocked(queued.Bytes, bytes))
                {
                    changed.Remove(message.Index);
                    UncountLocked(1, queued.Bytes);
                    batch.ChangeDiscarded = true;
                    DiscardLocked(batch, message.Index);
                    return;
                }

                changed[message.Index] = queued with { Bytes = bytes };
                return;
            }

            if (!HasRoomLocked(bytes))
            {
                batch.ChangeDiscarded = true;
                DiscardLocked(batch, message.Index);
                return;
            }

            (batch.Changed ??= []).Add(message.Index, new QueuedMessage(message, bytes));
            AcceptLocked(bytes);
        }
    }

    /// <summary>A subscribed flow ended. Not counted against the capacity: at most one per subscribed flow.</summary>
    public void CloseFlow(HttpFlow flow)
    {
        lock (_gate)
        {
            FlowBatchLocked(flow).Closed = true;
            WakeLocked();
        }
    }

    /// <summary>A subscribed flow was removed from the store.</summary>
    public void RemoveFlow(HttpFlow flow)
    {
        lock (_gate)
        {
            FlowBatchLocked(flow).Removed = true;
            WakeLocked();
        }
    }

    /// <summary>A flow of the list started, changed or ended; coalesced per flow id until the next send.</summary>
    public void FlowListChanged(HttpFlow flow, FlowRoute route, bool closed)
    {
        lock (_gate)
        {
            if (_pending.FlowList.TryGetValue(flow.Id, out var entry))
            {
                entry.Closed |= closed;
                return;
            }

            if (_pending.FlowListDropped > 0 || !HasRoomLocked(0))
            {
                // The client re-lists after the gap, so one discarded update makes the rest of this batch's moot.
                _pending.FlowListDropped++;
                _dropped++;
                return;
            }

            _pending.FlowList.Add(flow.Id, new FlowListEntry(flow, route) { Closed = closed });
            AcceptLocked(0);
        }
    }

    public void FlowListRemoved(HttpFlow flow, FlowRoute route)
    {
        lock (_gate)
        {
            if (_pending.FlowList.TryGetValue(flow.Id, out var entry))
            {
                entry.Removed = true;
                return;
            }

            if (_pending.FlowListDropped > 0 || !HasRoomLocked(0))
            {
                _pending.FlowListDropped++;
                _dropped++;
                return;
            }

            _pending.FlowList.Add(flow.Id, new FlowListEntry(flow, route) { Removed = true });
            AcceptLocked(0);
        }
    }

    /// <summary>The held list changed; the whole list, with previews of the contents, is sent once per tick however often it changed.</summary>
    public void HeldChanged()
    {
        lock (_gate)
        {
            _pending.HeldChanged = true;
            WakeLocked();
        }
    }

    /// <summary>
    /// The intercept settings changed; InterceptChanged is sent once per tick with the settings then in force. Like
    /// HeldChanged it is a flag, not a queued event: it takes no room in the queue and is never discarded.
    /// </summary>
    public void InterceptChanged()
    {
        lock (_gate)
        {
            _pending.InterceptChanged = true;
            WakeLocked();
        }
    }

    /// <summary>A rule was created, changed or removed; the whole list goes once per tick (a flag, never discarded).</summary>
    public void RulesChanged()
    {
        lock (_gate)
        {
            _pending.RulesChanged = true;
            WakeLocked();
        }
    }

    /// <summary>
    /// Called on the relay thread for every rule hit: returns at once while a RuleHits is already due, so a busy proxy
    /// costs a subscribed page one volatile read per hit and the page gets at most one RuleHits per tick.
    /// </summary>
    public void RuleCountersChanged()
    {
        if (_countersDue)
        {
            return;
        }

        lock (_gate)
        {
            _pending.RuleCounters = true;
            _countersDue = true;
            WakeLocked();
        }
    }

    private FlowBatch FlowBatchLocked(HttpFlow flow)
    {
        if (!_pending.Flows.TryGetValue(flow.Id, out var batch))
        {
            batch = new FlowBatch(flow);
            _pending.Flows.Add(flow.Id, batch);
        }

        return batch;
    }

    private bool HasRoomLocked(long bytes) =>
        _queued < _options.QueueCapacity && (_queued == 0 || _queuedBytes + bytes <= _options.QueueByteLimit);

    /// <summary>
    /// Counts a queued message at its new size; false, and nothing changed, if its growth does not fit. Alone in the
    /// queue it may grow past the bound, as a first event may be larger than it (a client is always sent something).
    /// </summary>
    private bool TryRecountLocked(long counted, long bytes)
    {
        var growth = bytes - counted;
        if (growth > 0 && _queued > 1 && _queuedBytes + growth > _options.QueueByteLimit)
        {
            return false;
        }

        _pending.Bytes += growth;
        _queuedBytes += growth;
        _highWaterBytes = Math.Max(_highWaterBytes, _queuedBytes);
        return true;
    }

    /// <summary>
    /// A queued add grew past the bound: it and the flow's later adds in this batch go into the gap, as a discarded
    /// add's later ones do (delivering them would put them ahead of it).
    /// </summary>
    private void DiscardAddedFromLocked(FlowBatch batch, int position)
    {
        var added = batch.Added;
        var index = added[position].Message.Index;
        long bytes = 0;
        for (var i = position; i < added.Count; i++)
        {
            bytes += added[i].Bytes;
        }

        var count = added.Count - position;
        added.RemoveRange(position, count);
        UncountLocked(count, bytes);
        _dropped += count - 1;
        DiscardLocked(batch, index);
    }

    /// <summary>Takes events back out of the pending batch (they were discarded after all).</summary>
    private void UncountLocked(int count, long bytes)
    {
        _pending.Count -= count;
        _pending.Bytes -= bytes;
        _queued -= count;
        _queuedBytes -= bytes;
    }

    private void DiscardLocked(FlowBatch batch, long index)
    {
        batch.GapCursor = batch.GapCursor < 0 ? index : Math.Min(batch.GapCursor, index);
        _dropped++;
        WakeLocked();
    }

    private void AcceptLocked(long bytes)
    {
        _pending.Count++;
        _pending.Bytes += bytes;
        _queued++;
        _queuedBytes += bytes;
        _highWater = Math.Max(_highWater, _queued);
        _highWaterBytes = Math.Max(_highWaterBytes, _queuedBytes);
        if (_pending.Count == _options.MaxBatchMessages)
        {
            // A full batch goes now rather than at the tick.
            _wake.Writer.TryWrite(true);
        }

        WakeLocked();
    }

    private void WakeLocked()
    {
        if (!_hasWork)
        {
            _hasWork = true;
            _wake.Writer.TryWrite(true);
        }
    }

    /// <summary>Whether a batch is waiting to be sent (tests wait for a feed to drain).</summary>
    internal bool HasWork
    {
        get { lock (_gate) { return _hasWork; } }
    }

    private bool IsFull
    {
        get { lock (_gate) { return _pending.Count >= _options.MaxBatchMessages; } }
    }

    private FeedBatch Swap()
    {
        lock (_gate)
        {
            var batch = _pending;
            _pending = _spare;
            _hasWork = false;

            // Cleared with the swap: a hit counted after this marks the new batch, and one counted before is read by the
            // send of this batch, which reads the counters after the swap.
            _countersDue = false;
            return batch;
        }
    }

    private async Task RunAsync(IFlowsClient client, CancellationToken cancellationToken)
    {
        // The tick is a timer that writes to the same wake-up channel as a full batch, so the loop waits on one thing.
        using var tick = _time.CreateTimer(static state => ((ClientFeed)state!)._wake.Writer.TryWrite(true), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        long? lastSend = null;
        try
        {
            while (true)
            {
                await _wake.Reader.ReadAsync(cancellationToken);
                if (!HasWork)
                {
                    // A late tick after a full batch already went.
                    continue;
                }

                // Leading edge: the first event after a quiet tick goes at once; later ones wait for the tick.
                var wait = lastSend is { } last ? _options.Tick - _time.GetElapsedTime(last) : TimeSpan.Zero;
                if (wait > TimeSpan.Zero && !IsFull)
                {
                    tick.Change(wait, Timeout.InfiniteTimeSpan);
                    await _wake.Reader.ReadAsync(cancellationToken);
                }

                var batch = Swap();
                lastSend = _time.GetTimestamp();
                try
                {
                    await SendAsync(client, batch, cancellationToken);
                }
                catch (TimeoutException)
                {
                    // Invoke closed the stalled connection and said so; its disconnect stops this loop.
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    Log.SendFailed(_logger, ex, ConnectionId);
                }

                // Whatever was not released chunk by chunk (flow-list entries, a failed send).
                Release(batch.Count, batch.Bytes);
                batch.Clear();
                _spare = batch;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The connection went away.
        }
    }

    private async Task SendAsync(IFlowsClient client, FeedBatch batch, CancellationToken cancellationToken)
    {
        // The flow list first, so a dashboard knows a flow before it hears about its messages.
        if (batch.FlowList.Count > 0)
        {
            var changed = new List<FlowSummary>(batch.FlowList.Count);
            foreach (var entry in batch.FlowList.Values)
            {
                // A flow removed after its change was queued would otherwise come back as a ghost.
                if (!entry.Removed && entry.Flow.IsStored)
                {
                    changed.Add(entry.Route.Summary(entry.Flow));
                }
            }

            foreach (var chunk in changed.Chunk(_options.MaxBatchMessages))
            {
                await Invoke(client.FlowsChanged(chunk), cancellationToken);
            }
        }

        if (batch.FlowListDropped > 0)
        {
            await SendGapAsync(client, FlowsScope, null, batch.FlowListDropped, cancellationToken);
        }

        HashSet<string>? removed = null;
        foreach (var entry in batch.FlowList.Values)
        {
            if (entry.Removed)
            {
                (removed ??= new(StringComparer.Ordinal)).Add(entry.Flow.Id);
            }
        }

        HashSet<string>? closedSent = null;
        foreach (var (flowId, flow) in batch.Flows)
        {
            await SendMessagesAsync(client, batch, flowId, flow, cancellationToken);
            if (flow.Closed && (closedSent ??= new(StringComparer.Ordinal)).Add(flowId))
            {
                await SendClosedAsync(client, flow.Flow, cancellationToken);
            }

            if (flow.Removed)
            {
                (removed ??= new(StringComparer.Ordinal)).Add(flowId);
            }
        }

        foreach (var entry in batch.FlowList.Values)
        {
            if (entry.Closed && (closedSent ??= new(StringComparer.Ordinal)).Add(entry.Flow.Id))
            {
                await SendClosedAsync(client, entry.Flow, cancellationToken);
            }
        }

        if (removed is not null)
        {
            await Invoke(client.FlowsRemoved([.. removed]), cancellationToken);
        }

        if (batch.HeldChanged && InterceptCountsOnly)
        {
            await Invoke(client.HeldCounts(_intercept.HeldByFlow()), cancellationToken);
        }
        else if (batch.HeldChanged)
        {
            // Previews: the whole list goes to every subscriber on every change, outside the queue's byte bound,
            // so each item is kept small (HeldView.PreviewBytes) whatever the size of the held message.
            var held = _intercept.Snapshot().Select(h => HeldView.From(h, _resolutions, preview: true)).ToArray();
            await Invoke(client.HeldChanged(held), cancellationToken);
        }

        if (batch.InterceptChanged)
        {
            await Invoke(client.InterceptChanged(InterceptApi.State(_intercept, _interceptSettings.Current)), cancellationToken);
        }

        if (batch.RulesChanged)
        {
            // The whole list, at send time: it is what the rules page shows, in order, so creates, edits and deletes made
            // within one tick arrive as one consistent picture. The counters it carries count as sent.
            var rules = _rules.Rules;
            _sentCounters.Clear();
            foreach (var rule in rules)
            {
                _sentCounters[rule.Id] = rule.ToCounters();
            }

            await Invoke(client.RulesChanged([.. rules.Select(r => r.ToView())]), cancellationToken);
        }

        if (batch.RuleCounters)
        {
            var moved = new List<RuleCounters>();
            foreach (var rule in _rules.Rules)
            {
                var counters = rule.ToCounters();
                if (!_sentCounters.TryGetValue(rule.Id, out var sent) || sent != counters)
                {
                    _sentCounters[rule.Id] = counters;
                    moved.Add(counters);
                }
            }

            if (moved.Count > 0)
            {
                await Invoke(client.RuleHits([.. moved]), cancellationToken);
            }
        }
    }

    private void Release(int count, long bytes)
    {
        lock (_gate)
        {
            _queued -= count;
            _queuedBytes -= bytes;
        }
    }

    private async Task SendMessagesAsync(IFlowsClient client, FeedBatch batch, string flowId, FlowBatch flow, CancellationToken cancellationToken)
    {
        var added = flow.Added;
        await SendChunkedAsync(client, batch, flowId, added, changed: false, cancellationToken);

        if (added.Count > 0)
        {
            _openGaps.Remove(flowId);
        }

        // While a hole is open, lost adds need no new gap: the client's catch-up reads them from the store. A lost change
        // does: the catch-up may have read that message before it changed, and would never read it again. One gap per
        // flow per batch, at the batch's lowest lost index; the hole still starts at the lowest cursor sent.
        var isOpen = _openGaps.TryGetValue(flowId, out var open);
        if (flow.GapCursor >= 0 && (!isOpen || open > flow.GapCursor || flow.ChangeDiscarded))
        {
            _openGaps[flowId] = isOpen ? Math.Min(open, flow.GapCursor) : flow.GapCursor;
            await SendGapAsync(client, FlowScope, flowId, flow.GapCursor, cancellationToken);
        }

        if (flow.Removed)
        {
            _openGaps.Remove(flowId);
        }

        if (flow.Changed is { Count: > 0 } changed)
        {
            var queued = changed.Values.ToArray();
            Array.Sort(queued, static (a, b) => a.Message.Index.CompareTo(b.Message.Index));
            await SendChunkedAsync(client, batch, flowId, queued, changed: true, cancellationToken);
        }
    }

    /// <summary>
    /// Sends added or changed messages in calls of up to MaxBatchMessages and about MaxBatchBytes of content (always at
    /// least one message), making views one chunk at a time so a batch's worth of contents is never encoded at once.
    /// </summary>
    private async Task SendChunkedAsync(IFlowsClient client, FeedBatch batch, string flowId, IReadOnlyList<QueuedMessage> messages, bool changed, CancellationToken cancellationToken)
    {
        for (var start = 0; start < messages.Count;)
        {
            var end = start;
            long bytes = 0;
            while (end < messages.Count && end - start < _options.MaxBatchMessages && (end == start || bytes + messages[end].Bytes <= _options.MaxBatchBytes))
            {
                bytes += messages[end].Bytes;
                end++;
            }

            var views = new MessageView[end - start];
            for (var i = start; i < end; i++)
            {
                var message = messages[i].Message;
                views[i - start] = MessageView.From(message, _resolutions.Get(message));
            }

            if (changed)
            {
                await Invoke(client.MessagesChanged(flowId, views), cancellationToken);
            }
            else
            {
                await Invoke(client.MessagesAdded(flowId, views), cancellationToken);
                Interlocked.Add(ref _messagesSent, views.Length);
            }

            // SignalR has serialized them: room for new events as soon as each chunk is out, not after the whole batch.
            // Released at the size they were counted at, whatever they have grown to since.
            Release(views.Length, bytes);
            batch.Count -= views.Length;
            batch.Bytes -= bytes;
            start = end;
        }
    }

    private Task SendClosedAsync(IFlowsClient client, HttpFlow flow, CancellationToken cancellationToken)
    {
        if (flow.WebSocket is not { } ws)
        {
            return Task.CompletedTask;
        }

        // A kill aborts both sockets; it is the only proxy-made close recorded as 1006 (user closes cannot pick 1006).
        var killed = ws.ClosedByProxy && ws.CloseCode == 1006;
        return Invoke(client.FlowClosed(flow.Id, ws.ClosedByClient, ws.CloseCode, ws.CloseReason, ws.TimestampEnd, killed), cancellationToken);
    }

    private Task SendGapAsync(IFlowsClient client, string scope, string? flowId, long cursor, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _gapsSent);
        Log.FellBehind(_logger, ConnectionId, scope, flowId, cursor);
        return Invoke(client.Gap(scope, flowId, cursor), cancellationToken);
    }

    private async Task Invoke(Task send, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _invocations);

        // The send itself cannot be cancelled (the typed client has no token); WaitAsync lets a
        // disconnect or shutdown stop waiting for a transport that never drains.
        try
        {
            await send.WaitAsync(_options.StalledSendTimeout, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // The client has not read for that long: its connection goes, and its queue with it (it reconnects and
            // catches up over REST, as after a gap).
            Log.Stalled(_logger, ConnectionId, _options.StalledSendTimeout.TotalSeconds);
            _abort();
            throw;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Hub connection {ConnectionId} fell behind: discarded {Scope} events of flow {FlowId}; catch up from cursor {Cursor}.")]
        public static partial void FellBehind(ILogger logger, string connectionId, string scope, string? flowId, long cursor);

        [LoggerMessage(3, LogLevel.Information, "Hub connection {ConnectionId} has not read for {Seconds} s; it is closed (a dashboard reconnects and catches up).")]
        public static partial void Stalled(ILogger logger, string connectionId, double seconds);

        [LoggerMessage(2, LogLevel.Warning, "Sending a batch to hub connection {ConnectionId} failed.")]
        public static partial void SendFailed(ILogger logger, Exception exception, string connectionId);
    }
}
