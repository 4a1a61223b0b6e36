using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons;

/// <summary>Which peers a close is sent to.</summary>
public enum CloseTarget
{
    Both,
    Client,
    Server,
}

/// <summary>
/// Acts on live WebSocket flows: mitmproxy's <c>inject.websocket</c> command, close and kill.
/// Safe from any thread, inside or outside hooks.
/// </summary>
public interface IWebSocketControl
{
    /// <summary>
    /// Queues a message for <paramref name="flow"/>: to the client when <paramref name="toClient"/>,
    /// otherwise to the server. The message is recorded with <c>Injected = true</c>, passes through
    /// the message hooks like any other, and is forwarded in the order injections were accepted, behind
    /// any message of the same direction that a hook is still holding (indices follow the wire order).
    /// </summary>
    /// <returns>The message, already accepted; <see cref="WebSocketMessage.Index"/> is set once it is recorded.</returns>
    /// <exception cref="InvalidOperationException">
    /// The flow is not a live WebSocket flow, or too much injected content already waits for that peer (it is not reading).
    /// </exception>
    /// <exception cref="ArgumentException">Text that is not valid UTF-8, or content past the maximum message size.</exception>
    WebSocketMessage Inject(HttpFlow flow, bool toClient, ReadOnlyMemory<byte> content, bool isText);

    /// <summary>Like <see cref="Inject"/>, completing once the message has been recorded and forwarded (or dropped by a hook).</summary>
    /// <remarks>
    /// Do not await this from inside a hook; call <see cref="Inject"/> there. An injection waits behind the
    /// messages of its direction that hooks are still handling, so a hook awaiting one can wait on itself, or on
    /// a hook of the other direction that awaits an injection the first one holds up.
    /// </remarks>
    Task<WebSocketMessage> InjectAsync(HttpFlow flow, bool toClient, ReadOnlyMemory<byte> content, bool isText, CancellationToken cancellationToken = default);

    /// <summary>Sends a close frame to one or both peers, then ends the connection.</summary>
    /// <remarks><paramref name="cancellationToken"/> ends only the wait: the close itself goes on.</remarks>
    /// <exception cref="InvalidOperationException">
    /// The flow is not live; or a peer did not take its close within the relay's close timeout (it stopped reading),
    /// so its connection was dropped and the flow ended with an error saying so.
    /// </exception>
    Task CloseAsync(HttpFlow flow, CloseTarget target, int code, string? reason, CancellationToken cancellationToken = default);

    /// <summary>Aborts both TCP connections at once, as mitmproxy's <c>kill</c>.</summary>
    /// <remarks>
    /// The flow records 1006 "killed", or, when a close was already under way, keeps that close and gets the error
    /// "Connection killed.". A live flow that is no relayed WebSocket (a plain HTTP exchange under way, a handshake
    /// waiting for its answer) has its connection aborted and the error "Connection killed." too.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The flow is not live.</exception>
    void Kill(HttpFlow flow);

    /// <summary>True if the flow is relayed right now.</summary>
    bool IsLive(HttpFlow flow);
}
