namespace WsWeb.Proxy.WebSockets;

/// <summary>Limits of the WebSocket relay.</summary>
internal sealed record RelaySettings
{
    /// <summary>Largest message (after reassembly and decompression); larger ones are closed with 1009.</summary>
    public long MaxMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>How long to wait for the other peer's close reply before dropping TCP.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a peer that broke the protocol gets to take the close frame it is sent. One that has not taken it by
    /// then is not reading, and its TCP is dropped at once rather than held for <see cref="CloseTimeout"/>.
    /// </summary>
    public TimeSpan OffenderCloseTimeout { get; init; } = TimeSpan.FromSeconds(1);
}
