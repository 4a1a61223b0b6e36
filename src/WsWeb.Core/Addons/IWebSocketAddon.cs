using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons;

/// <summary>
/// A C# addon with mitmproxy's WebSocket hooks. Register implementations in DI
/// (<c>services.AddWebSocketAddon&lt;T&gt;()</c>); they run in registration order.
/// </summary>
/// <remarks>
/// A hook stalls only its own direction of its own connection while it runs. Change
/// <paramref name="message"/> to forward it changed, call <see cref="WebSocketMessage.Drop"/> to keep
/// it from the peer. <c>flow.WebSocket.Messages[^1]</c> is the message just recorded unless the other
/// direction recorded one meanwhile, so prefer the <paramref name="message"/> argument.
/// </remarks>
public interface IWebSocketAddon
{
    /// <summary>The upgrade succeeded; no message has been relayed yet.</summary>
    ValueTask WebSocketStartAsync(HttpFlow flow, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>A complete message arrived (or was injected) and is about to be forwarded.</summary>
    ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>The connection closed; <see cref="WebSocketData.CloseCode"/> and friends are set.</summary>
    ValueTask WebSocketEndAsync(HttpFlow flow, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
