namespace WsWeb.Core.Flows;

/// <summary>Retention bounds of the in-memory store.</summary>
public sealed record FlowStoreOptions
{
    /// <summary>Flows kept; past this the oldest finished flows are evicted first.</summary>
    public int MaxFlows { get; init; } = 10_000;

    /// <summary>Messages kept per WebSocket flow; past this the oldest are trimmed (indices stay absolute).</summary>
    public int MaxMessagesPerFlow { get; init; } = 100_000;
}
