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

    /// <remarks>
    /// A message released (edited or not) whose peer was sent a close before it went out is marked dropped by the relay
    /// afterwards: it never arrived, so it reads as <see cref="FlowEnded"/>, not as the release that did not happen.
    /// </remarks>
    public string? Get(WebSocketMessage message) => !_resolutions.TryGetValue(message, out var resolution) ? null
        : message.Dropped && resolution is Released or Edited or TimeoutReleased ? FlowEnded
        : resolution;
}
