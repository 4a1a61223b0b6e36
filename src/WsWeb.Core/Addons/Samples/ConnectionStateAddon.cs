using System.Globalization;
using WsWeb.Core.Flows;

namespace WsWeb.Core.Addons.Samples;

/// <summary>Seed example "Checking Connection State": reports who closed and with which code and reason.</summary>
public sealed class ConnectionStateAddon(AddonOutput output) : IWebSocketAddon
{
    public ValueTask WebSocketEndAsync(HttpFlow flow, CancellationToken cancellationToken)
    {
        var ws = flow.WebSocket!;
        output.WriteLine(ws.ClosedByClient == true ? "Client closed the connection" : "Server closed the connection");
        if (ws.CloseCode is { } code)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Close code: {code}"));
            output.WriteLine($"Close reason: {ws.CloseReason}");
        }

        return ValueTask.CompletedTask;
    }
}
