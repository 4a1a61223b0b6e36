using System.Collections;

namespace WsWeb.Core.WebSockets;

/// <summary>
/// Everything about one WebSocket connection; a port of mitmproxy's <c>WebSocketData</c>,
/// reached as <see cref="Flows.HttpFlow.WebSocket"/>.
/// </summary>
/// <remarks>
/// Both relay directions, injections and API readers touch a live flow at once, so the message list
/// is append-only and guarded by a lock. The oldest messages are trimmed past
/// <see cref="MaxMessages"/>; <see cref="WebSocketMessage.Index"/> stays absolute, so cursors survive.
/// </remarks>
public sealed class WebSocketData
{
    private readonly object _gate = new();
    private readonly List<WebSocketMessage> _messages = [];
    private long _firstIndex;
    private bool? _closedByClient;
    private int? _closeCode;
    private string? _closeReason;
    private double? _timestampEnd;
    private bool _closedByProxy;

    public WebSocketData()
        : this(int.MaxValue)
    {
    }

    public WebSocketData(int maxMessages, long maxBytes = long.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        MaxMessages = maxMessages;
        MaxBytes = maxBytes;
        Messages = new MessageView(this);
    }

    /// <summary>The retention bound of this connection's message list.</summary>
    public int MaxMessages { get; }

    /// <summary>The retention bound on the bytes kept (<see cref="RetainedBytes"/>); the newest message is always kept.</summary>
    public long MaxBytes { get; }

    /// <summary>
    /// What each retained message costs beyond its content: the message object, its array's header and its place in
    /// the list, about 110–160 bytes as measured. Counted into <see cref="RetainedBytes"/>, so the memory bounds hold for
    /// a peer that floods empty or tiny messages (10 million of them held 1.1 GB while the content bytes were 0).
    /// </summary>
    public const int MessageOverhead = 128;

    /// <summary>Bytes of the retained messages as the memory bounds count them: content (as recorded) plus <see cref="MessageOverhead"/> each.</summary>
    public long RetainedBytes
    {
        get { lock (_gate) { return _retainedBytes; } }
    }

    private long _retainedBytes;

    /// <summary>All retained messages in the order they were recorded.</summary>
    public IReadOnlyList<WebSocketMessage> Messages { get; }

    /// <summary>How many of the oldest messages were trimmed by the retention bound.</summary>
    public long TrimmedCount
    {
        get { lock (_gate) { return _firstIndex; } }
    }

    /// <summary>Total number of messages ever recorded (trimmed ones included).</summary>
    public long TotalCount
    {
        get { lock (_gate) { return _firstIndex + _messages.Count; } }
    }

    /// <summary>True if the client closed, false if the server did, null while open.</summary>
    public bool? ClosedByClient
    {
        get { lock (_gate) { return _closedByClient; } }
        set { lock (_gate) { _closedByClient = value; } }
    }

    /// <summary>RFC 6455 close code (1005 when the close frame had none, 1006 when TCP was lost).</summary>
    public int? CloseCode
    {
        get { lock (_gate) { return _closeCode; } }
        set { lock (_gate) { _closeCode = value; } }
    }

    public string? CloseReason
    {
        get { lock (_gate) { return _closeReason; } }
        set { lock (_gate) { _closeReason = value; } }
    }

    /// <summary>
    /// True when the proxy started the close (a user's close, a protocol error, shutdown) rather than a
    /// peer. mitmproxy has no such field; <see cref="ClosedByClient"/> then names the side that was at fault,
    /// or the side a user's close spoke for (a close sent to the server speaks for the client).
    /// </summary>
    public bool ClosedByProxy
    {
        get { lock (_gate) { return _closedByProxy; } }
        set { lock (_gate) { _closedByProxy = value; } }
    }

    /// <summary>Unix seconds when the connection closed.</summary>
    public double? TimestampEnd
    {
        get { lock (_gate) { return _timestampEnd; } }
        set { lock (_gate) { _timestampEnd = value; } }
    }

    /// <summary>Ping frames seen from the client and from the server (forwarded end to end).</summary>
    public long ClientPings => Interlocked.Read(ref _clientPings);

    public long ServerPings => Interlocked.Read(ref _serverPings);

    public long ClientPongs => Interlocked.Read(ref _clientPongs);

    public long ServerPongs => Interlocked.Read(ref _serverPongs);

    private long _clientPings, _serverPings, _clientPongs, _serverPongs;

    internal void CountControl(Opcode opcode, bool fromClient)
    {
        switch (opcode, fromClient)
        {
            case (Opcode.Ping, true): Interlocked.Increment(ref _clientPings); break;
            case (Opcode.Ping, false): Interlocked.Increment(ref _serverPings); break;
            case (Opcode.Pong, true): Interlocked.Increment(ref _clientPongs); break;
            case (Opcode.Pong, false): Interlocked.Increment(ref _serverPongs); break;
        }
    }

    /// <summary>Restores ping/pong counters (importers).</summary>
    public void SetControlCounts(long clientPings, long serverPings, long clientPongs, long serverPongs)
    {
        Interlocked.Exchange(ref _clientPings, clientPings);
        Interlocked.Exchange(ref _serverPings, serverPings);
        Interlocked.Exchange(ref _clientPongs, clientPongs);
        Interlocked.Exchange(ref _serverPongs, serverPongs);
    }

    /// <summary>
    /// Restores how many messages were trimmed before the first retained one (importers), so indices read
    /// back from a file stay the absolute indices they were exported with.
    /// </summary>
    /// <exception cref="InvalidOperationException">Messages were already recorded.</exception>
    public void SetTrimmedCount(long trimmedCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trimmedCount);
        lock (_gate)
        {
            if (_messages.Count > 0 || _firstIndex > 0)
            {
                throw new InvalidOperationException("The trimmed count can only be set before any message is recorded.");
            }

            _firstIndex = trimmedCount;
            _restoredTrimmedCount = trimmedCount;
        }
    }

    private long _restoredTrimmedCount;
    private bool _crossedMaxMessages;
    private bool _crossedMaxBytes;

    /// <summary>
    /// How many messages this list trimmed itself, leaving out those <see cref="SetTrimmedCount"/> said were gone before:
    /// an import reports what its own bounds cut from a flow, not what the capture it reads had already lost.
    /// </summary>
    internal long TrimmedHere
    {
        get { lock (_gate) { return _firstIndex - _restoredTrimmedCount; } }
    }

    /// <summary>Whether <see cref="MaxMessages"/>, and whether <see cref="MaxBytes"/>, ever made <see cref="Add"/> trim: which bound to name.</summary>
    internal (bool MaxMessages, bool MaxBytes) BoundsCrossed
    {
        get { lock (_gate) { return (_crossedMaxMessages, _crossedMaxBytes); } }
    }

    /// <summary>Counts and content bytes of the retained messages by direction, kept as messages come and go.</summary>
    public MessageTotals Totals
    {
        get { lock (_gate) { return _totals; } }
    }

    private MessageTotals _totals;
    private bool _detached;

    /// <summary>Records a message at the end of the list and assigns its <see cref="WebSocketMessage.Index"/>.</summary>
    /// <returns>
    /// How much <see cref="RetainedBytes"/> changed (the message minus what the retention bounds trimmed),
    /// for the owner's budget; 0 once <see cref="Detach"/> was called.
    /// </returns>
    public long Add(WebSocketMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        lock (_gate)
        {
            message.Index = _firstIndex + _messages.Count;
            // What the peer sent: a message recorded already edited (an imported one) counts its original, as it was
            // counted when it was captured, so a flow's byte totals survive export and import.
            message.RecordedLength = message.OriginalContent?.Length ?? message.ContentLength;
            _messages.Add(message);
            Count(message, +1);
            var before = _retainedBytes - message.RecordedLength - MessageOverhead;
            if (_messages.Count > MaxMessages || _retainedBytes > MaxBytes)
            {
                // Trim a tenth of whichever bound was crossed at once, so trimming stays amortised O(1) per message.
                var excess = _messages.Count > MaxMessages ? Math.Max(_messages.Count - MaxMessages, MaxMessages / 10) : 0;
                var bytesTarget = _retainedBytes > MaxBytes ? MaxBytes - MaxBytes / 10 : long.MaxValue;
                _crossedMaxMessages |= excess > 0;
                _crossedMaxBytes |= bytesTarget != long.MaxValue;
                EvictOldestLocked(excess, bytesTarget);
            }

            return _detached ? 0 : _retainedBytes - before;
        }
    }

    /// <summary>
    /// Trims the oldest messages until at least <paramref name="bytes"/> of content are gone, keeping the newest message,
    /// as the retention bounds in <see cref="Add"/> do (indices stay absolute): the owner's total budget asks for it.
    /// </summary>
    /// <returns>How much <see cref="RetainedBytes"/> fell, for the owner's budget; 0 once <see cref="Detach"/> was called.</returns>
    public long TrimOldest(long bytes)
    {
        lock (_gate)
        {
            var before = _retainedBytes;
            EvictOldestLocked(0, before - bytes);
            return _detached ? 0 : before - _retainedBytes;
        }
    }

    /// <summary>
    /// Evicts the oldest messages until at least <paramref name="count"/> are gone and no more than
    /// <paramref name="bytesTarget"/> bytes remain, always keeping the newest; indices stay absolute.
    /// </summary>
    private void EvictOldestLocked(int count, long bytesTarget)
    {
        var evicted = 0;
        while (evicted < _messages.Count - 1 && (evicted < count || _retainedBytes > bytesTarget))
        {
            Count(_messages[evicted], -1);
            _messages[evicted].Evict();
            evicted++;
        }

        _messages.RemoveRange(0, evicted);
        _firstIndex += evicted;
    }

    /// <summary>
    /// The owner (a store) stops accounting for this list: returns the bytes it had counted, and later
    /// <see cref="Add"/> calls report no change. Under the list's own lock, so no add is counted twice or lost.
    /// </summary>
    public long Detach()
    {
        lock (_gate)
        {
            if (_detached)
            {
                return 0;
            }

            _detached = true;
            return _retainedBytes;
        }
    }

    private void Count(WebSocketMessage message, int sign)
    {
        var length = (long)message.RecordedLength * sign;
        _retainedBytes += length + ((long)MessageOverhead * sign);
        _totals = message.FromClient
            ? _totals with { FromClient = _totals.FromClient + sign, BytesFromClient = _totals.BytesFromClient + length }
            : _totals with { FromServer = _totals.FromServer + sign, BytesFromServer = _totals.BytesFromServer + length };
    }

    /// <summary>Records the first close seen; later calls keep the first one (the close that started the closing handshake).</summary>
    /// <returns>True if this call recorded the close.</returns>
    public bool TryClose(bool closedByClient, int code, string? reason, double timestamp, bool byProxy = false)
    {
        lock (_gate)
        {
            if (_closedByClient is not null)
            {
                return false;
            }

            _closedByClient = closedByClient;
            _closedByProxy = byProxy;
            _closeCode = code;
            _closeReason = reason;
            _timestampEnd = timestamp;
            return true;
        }
    }

    /// <summary>Copies the messages with <c>Index &gt;= fromIndex</c>, up to <paramref name="limit"/>.</summary>
    /// <remarks>
    /// Every message handed out from the list is marked shared under the lock that retention trims with,
    /// so a reader holding one never sees its content reused (see <see cref="WebSocketMessage.Evict"/>).
    /// </remarks>
    public List<WebSocketMessage> Snapshot(long fromIndex = 0, int limit = int.MaxValue)
    {
        lock (_gate)
        {
            var start = (int)Math.Clamp(fromIndex - _firstIndex, 0, _messages.Count);
            var count = Math.Min(limit, _messages.Count - start);
            var messages = _messages.GetRange(start, count);
            foreach (var message in messages)
            {
                message.SharedContent();
            }

            return messages;
        }
    }

    /// <summary>
    /// Copies the <see cref="MessageStamp"/> of each message with <c>Index &gt;= fromIndex</c> into
    /// <paramref name="destination"/>; returns how many were copied (0 past the end).
    /// </summary>
    /// <remarks>
    /// For overviews that need when and how much, not what: unlike <see cref="Snapshot"/> it hands out no message, so
    /// none is marked shared and retention can still reuse the arrays of those it evicts.
    /// </remarks>
    public int CopyStamps(long fromIndex, Span<MessageStamp> destination)
    {
        lock (_gate)
        {
            var start = (int)Math.Clamp(fromIndex - _firstIndex, 0, _messages.Count);
            var count = Math.Min(destination.Length, _messages.Count - start);
            for (var i = 0; i < count; i++)
            {
                var m = _messages[start + i];
                destination[i] = new MessageStamp(m.Index, m.Timestamp, m.RecordedLength, m.FromClient, m.Dropped, m.Injected);
            }

            return count;
        }
    }

    /// <summary>Finds a message by its absolute index, or null if it is unknown or trimmed.</summary>
    public WebSocketMessage? Find(long index)
    {
        lock (_gate)
        {
            var i = index - _firstIndex;
            return i >= 0 && i < _messages.Count ? Share(_messages[(int)i]) : null;
        }
    }

    private static WebSocketMessage Share(WebSocketMessage message)
    {
        message.SharedContent();
        return message;
    }

    private sealed class MessageView(WebSocketData owner) : IReadOnlyList<WebSocketMessage>
    {
        public WebSocketMessage this[int index]
        {
            get
            {
                lock (owner._gate)
                {
                    return Share(owner._messages[index]);
                }
            }
        }

        public int Count
        {
            get { lock (owner._gate) { return owner._messages.Count; } }
        }

        public IEnumerator<WebSocketMessage> GetEnumerator() => owner.Snapshot().GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>Retained messages and their content bytes, by direction.</summary>
public readonly record struct MessageTotals(long FromClient, long FromServer, long BytesFromClient, long BytesFromServer);

/// <summary>When a message was recorded, which way it went and how large it was as recorded: no content.</summary>
public readonly record struct MessageStamp(long Index, double Timestamp, int Length, bool FromClient, bool Dropped, bool Injected);
