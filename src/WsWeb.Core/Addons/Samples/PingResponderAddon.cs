using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons.Samples;

/// <summary>
/// Seed example "Injecting Messages": when a text message mentions "ping", inject <c>{"type": "pong"}</c>.
/// </summary>
/// <remarks>
/// mitmproxy's command is <c>inject.websocket(flow, to_client, message, is_text)</c>; the seed passes
/// False with a comment that reads both ways. We answer the peer that said "ping", which is what a
/// "response" means: a client's ping gets a pong injected to the client, as if the server sent it.
/// </remarks>
public sealed class PingResponderAddon(IWebSocketControl control) : IWebSocketAddon
{
    private static readonly byte[] Pong = """{"type": "pong"}"""u8.ToArray();

    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        // Injected messages pass through hooks too; answering our own pong would never end.
        if (message.IsText && !message.Injected && message.Text.Contains("ping", StringComparison.Ordinal))
        {
            control.Inject(flow, toClient: message.FromClient, Pong, isText: true);
        }

        return ValueTask.CompletedTask;
    }
}
