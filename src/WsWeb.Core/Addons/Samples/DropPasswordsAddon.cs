using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons.Samples;

/// <summary>Seed example "Dropping Messages": messages containing the bytes "password" never reach the peer.</summary>
public sealed class DropPasswordsAddon : IWebSocketAddon
{
    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        if (message.Content.AsSpan().IndexOf("password"u8) >= 0)
        {
            message.Drop();
        }

        return ValueTask.CompletedTask;
    }
}
