using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Addons.Samples;

/// <summary>Seed example "Processing WebSocket Messages": prints each message with its direction.</summary>
public sealed class ProcessMessagesAddon(AddonOutput output) : IWebSocketAddon
{
    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        var direction = message.FromClient ? "Client" : "Server";
        output.WriteLine($"{direction}: {PythonBytes.Repr(message.Content)}");
        return ValueTask.CompletedTask;
    }
}

/// <summary>Formats bytes as Python's <c>repr(bytes)</c>, so the sample prints what mitmproxy's would.</summary>
public static class PythonBytes
{
    public static string Repr(ReadOnlySpan<byte> content)
    {
        // As CPython: single quotes, unless the bytes hold a ' and no ", then double quotes (and ' is left alone).
        var quote = content.Contains((byte)'\'') && !content.Contains((byte)'"') ? '"' : '\'';
        var text = new System.Text.StringBuilder().Append('b').Append(quote);
        foreach (var b in content)
        {
            _ = b switch
            {
                (byte)'\\' => text.Append(@"\\"),
                _ when b == quote => text.Append('\\').Append(quote),
                (byte)'\n' => text.Append(@"\n"),
                (byte)'\r' => text.Append(@"\r"),
                (byte)'\t' => text.Append(@"\t"),
                >= 0x20 and < 0x7F => text.Append((char)b),
                _ => text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{b:x2}"),
            };
        }

        return text.Append(quote).ToString();
    }
}
