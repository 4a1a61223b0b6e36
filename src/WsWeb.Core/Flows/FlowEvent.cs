using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Flows;

public enum FlowEventKind
{
    /// <summary>A flow was recorded (request seen).</summary>
    FlowStarted,

    /// <summary>A flow's response, upgrade or error changed.</summary>
    FlowUpdated,

    /// <summary>A WebSocket message was recorded.</summary>
    MessageAdded,

    /// <summary>A recorded message changed (dropped, edited, released).</summary>
    MessageChanged,

    /// <summary>The flow finished: WebSocket closed, HTTP exchange done, or killed.</summary>
    FlowEnded,

    /// <summary>The flow was removed from the store (retention or user).</summary>
    FlowRemoved,
}

/// <summary>One change to the store. A struct so publishing a message costs no allocation.</summary>
public readonly record struct FlowEvent(FlowEventKind Kind, HttpFlow Flow, WebSocketMessage? Message = null);
