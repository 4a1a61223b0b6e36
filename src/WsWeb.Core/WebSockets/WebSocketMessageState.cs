namespace WsWeb.Core.WebSockets;

/// <summary>
/// The serialisable state of a message, the tuple mitmproxy stores:
/// <c>(type, from_client, content, timestamp, dropped, injected)</c>.
/// </summary>
public readonly record struct WebSocketMessageState(
    int Type,
    bool FromClient,
    byte[] Content,
    double Timestamp,
    bool Dropped,
    bool Injected);
