using System.Buffers.Binary;
using System.Globalization;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons.Samples;

/// <summary>Seed example "Working with Binary Data": reads a big-endian uint32 message type from binary messages.</summary>
public sealed class BinaryProtocolAddon(AddonOutput output) : IWebSocketAddon
{
    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        if (!message.IsText && message.Content.Length >= 4)
        {
            var type = BinaryPrimitives.ReadUInt32BigEndian(message.Content);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Binary message type: {type}"));
        }

        return ValueTask.CompletedTask;
    }
}
