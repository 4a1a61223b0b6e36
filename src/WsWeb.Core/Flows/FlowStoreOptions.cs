namespace WsWeb.Core.Flows;

/// <summary>Retention bounds of the in-memory store.</summary>
public sealed record FlowStoreOptions
{
    /// <summary>Flows kept; past this the oldest finished flows are evicted first.</summary>
    public int MaxFlows { get; init; } = 10_000;

    /// <summary>Messages kept per WebSocket flow; past this the oldest are trimmed (indices stay absolute).</summary>
    public int MaxMessagesPerFlow { get; init; } = 100_000;

    /// <summary>Content bytes kept per WebSocket flow; past this the oldest messages are trimmed.</summary>
    public long MaxBytesPerFlow { get; init; } = 256L * 1024 * 1024;

    /// <summary>Content bytes (messages and recorded bodies) kept across all flows; past this the oldest finished flows are evicted.</summary>
    public long MaxTotalBytes { get; init; } = 1024L * 1024 * 1024;
}
