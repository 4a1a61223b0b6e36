using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Intercept;

/// <summary>
/// Holds matching messages until the user decides. Registered last, so it sees what rules made of the
/// message. Awaiting inside the hook is what keeps the order: the relay does not read the next message
/// of this direction until the hook returns, while the other direction (and ping/pong, which never
/// reach hooks) keeps flowing.
/// </summary>
internal sealed partial class InterceptAddon(InterceptService intercept, ILogger<InterceptAddon> logger) : IWebSocketAddon
{
    public async ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        if (message.Dropped)
        {
            return;
        }

        var hold = intercept.ShouldHold(flow, message);
        if (intercept.Settings?.Filter is { } filter && filter.TakeFirstRelayTimeout())
        {
            LogFilterTimeout(filter.Expression);
        }

        if (!hold)
        {
            return;
        }

        var held = intercept.Hold(flow, message);
        try
        {
            await held.Decision.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The relay is stopping (closed, killed, shutdown): take the message off the list. It never reached the
            // peer, so it is dropped, as the shutdown and AbandonFlow record such messages (docs/rest.md).
            intercept.TryResolve(held, drop: true, newContent: null, HoldResolutions.FlowEnded);
            throw;
        }
    }

    public ValueTask WebSocketEndAsync(HttpFlow flow, CancellationToken cancellationToken)
    {
        intercept.AbandonFlow(flow);
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(1, LogLevel.Warning, "A regex of the intercept filter '{Filter}' timed out (100 ms) on a message, which then was not held. Simplify the regex.")]
    private partial void LogFilterTimeout(string filter);
}
