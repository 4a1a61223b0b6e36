using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons.Samples;

/// <summary>Seed example "Modifying Text Messages": replaces "secret" with "REDACTED" in text messages.</summary>
public sealed class RedactSecretsAddon : IWebSocketAddon
{
    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        if (message.IsText)
        {
            var text = message.Text;
            message.Text = text.Replace("secret", "REDACTED", StringComparison.Ordinal);
        }

        return ValueTask.CompletedTask;
    }
}
