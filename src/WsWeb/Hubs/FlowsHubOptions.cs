namespace WsWeb.Hubs;

/// <summary>How the flows hub batches and bounds what it sends to each connection.</summary>
public sealed record FlowsHubOptions
{
    /// <summary>Shortest time between two batches to one connection; events in between are coalesced.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Most messages in one invocation; a connection whose queue reaches it is sent to before the tick.</summary>
    public int MaxBatchMessages { get; init; } = 500;

    /// <summary>Most content bytes in one invocation (at least one message is always sent).</summary>
    public long MaxBatchBytes { get; init; } = 1024 * 1024;

    /// <summary>Events queued per connection (messages, changes, flow-list entries) before new ones are discarded with a gap notice.</summary>
    public int QueueCapacity { get; init; } = 20_000;

    /// <summary>
    /// Message content bytes (content and original content, of added and changed messages) queued per connection
    /// before new messages and changes are discarded with a gap notice.
    /// </summary>
    public long QueueByteLimit { get; init; } = 16L * 1024 * 1024;

    /// <summary>
    /// How long one send to a connection may wait for its client to read before the connection is closed. A tab that
    /// stopped reading (a frozen page, a script that subscribed and went away) otherwise holds its full queue, some
    /// 20 MB with large messages, for as long as its TCP connection lives; closed, it reconnects and catches up over REST.
    /// </summary>
    public TimeSpan StalledSendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Flows one connection may subscribe to at once; keeps the per-connection state small.</summary>
    public int MaxFlowSubscriptions { get; init; } = 64;
}
