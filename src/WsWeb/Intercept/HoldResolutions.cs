using System.Runtime.CompilerServices;
using WsWeb.Core.WebSockets;

namespace WsWeb.Intercept;

/// <summary>
/// What happened to each message that was held: the model has no field for it (mitmproxy has none
/// either), so it lives beside the message and goes away with it when the flow is trimmed or evicted.
/// </summary>
internal sealed class HoldResolutions
{
    public const string Held = "held";
    public const string Released = "released";
    public const string Edited = "edited";
    public const string Dropped = "dropped";
    public const string TimeoutReleased = "timeout-released";
    public const string TimeoutDropped = "timeout-dropped";
    public const string FlowEnded = "flow-ended";

    private readonly ConditionalWeakTable<WebSocketMessage, string> _resolutions = [];

    public void Set(WebSocketMessage message, string resolution) => _resolutions.AddOrUpdate(message, resolution);

    public string? Get(WebSocketMessage message) => _resolutions.TryGetValue(message, out var resolution) ? resolution : null;
}
