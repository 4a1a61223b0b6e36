namespace WsWeb.Proxy.WebSockets;

/// <summary>Limits of the WebSocket relay.</summary>
internal sealed record RelaySettings
{
    /// <summary>Largest message (after reassembly and decompression); larger ones are closed with 1009.</summary>
    public long MaxMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>How long to wait for the other peer's close reply before dropping TCP.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
