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

    /// <summary>Flows one connection may subscribe to at once; keeps the per-connection state small.</summary>
    public int MaxFlowSubscriptions { get; init; } = 64;
}
