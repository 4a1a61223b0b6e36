using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using WsWeb.Api;

namespace WsWeb.Dashboard;

/// <summary>Formatting shared by the Razor components (and mirrored by wwwroot/js/dashboard.js for live rows).</summary>
internal static class Fmt
{
    /// <summary>Characters of a message preview in a list row.</summary>
    public const int PreviewChars = 160;

    /// <summary>Bytes of a binary message preview in a list row.</summary>
    public const int PreviewBytes = 24;

    /// <summary>Largest content shown in full by the content view; the rest is offered as a download.</summary>
    public const int MaxViewBytes = 256 * 1024;

    /// <summary>
    /// Most bytes an HTTP body is decoded to for its view (gzip, br…): enough to give most bodies' decoded size, while a
    /// bomb (a small gzip of gigabytes) costs each page view no more than this.
    /// </summary>
    public const int MaxDecodedBytes = 4 * 1024 * 1024;

    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Bytes(long bytes) => bytes switch
    {
        < 1000 => bytes.ToString(CultureInfo.InvariantCulture) + " B",
        < 1_000_000 => (bytes / 1000.0).ToString("0.#", CultureInfo.InvariantCulture) + " kB",
        < 1_000_000_000 => (bytes / 1_000_000.0).ToString("0.#", CultureInfo.InvariantCulture) + " MB",
        _ => (bytes / 1_000_000_000.0).ToString("0.##", CultureInfo.InvariantCulture) + " GB",
    };

    /// <summary>
    /// Bytes in binary units (B, KiB, MiB, GiB), for sizes set in powers of two such as <see cref="MaxViewBytes"/>:
    /// 262,144 bytes is "256 KiB" here, where <see cref="Bytes"/> would say "262.1 kB".
    /// </summary>
    public static string BinaryBytes(long bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + " B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.#", CultureInfo.InvariantCulture) + " KiB",
        < 1024 * 1024 * 1024 => (bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB",
        _ => (bytes / (1024.0 * 1024 * 1024)).ToString("0.##", CultureInfo.InvariantCulture) + " GiB",
    };

    /// <summary>Time of day (UTC; the page script rewrites it to the browser's zone from <c>data-ts</c>).</summary>
    public static string Clock(double timestamp, bool milliseconds = false) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)(timestamp * 1000)).ToString(milliseconds ? "HH:mm:ss.fff" : "HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Iso(double timestamp) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)(timestamp * 1000)).ToString("yyyy-MM-dd HH:mm:ss.fff 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Seconds since the flow started, e.g. <c>+12.345</c>.</summary>
    public static string Relative(double timestamp, double start) =>
        "+" + Math.Max(0, timestamp - start).ToString("0.000", CultureInfo.InvariantCulture);

    public static string Num(double value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>How many flows the list shows: "12", or "newest 500 of 1234" when it is cut (mirrored by dashboard.js).</summary>
    public static string FlowCount(int shown, int total) =>
        shown < total ? $"newest {Num(shown)} of {Num(total)}" : Num(shown);

    /// <summary>The title of a flow row's "held N" badge (dashboard.js heldTitle mirrors it).</summary>
    public static string HeldTitle(int held) =>
        $"{held} message{(held == 1 ? " is" : "s are")} held by intercept: open the flow or Intercept to decide";

    /// <summary>Open/closed state of a flow for its badge: text and Bootstrap colour.</summary>
    public static (string Text, string Css) State(FlowSummary flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        if (flow.IsLive)
        {
            return flow.IsWebSocket ? ("open", "text-bg-success") : ("pending", "text-bg-info");
        }

        if (flow.IsWebSocket)
        {
            var code = flow.CloseCode is { } c ? " " + c.ToString(CultureInfo.InvariantCulture) : "";
            return ("closed" + code, flow.CloseCode is 1000 or 1001 or 1005 ? "text-bg-secondary" : "text-bg-warning");
        }

        if (flow.Error is not null)
        {
            return ("error", "text-bg-danger");
        }

        return (flow.Status is { } status ? status.ToString(CultureInfo.InvariantCulture) : "—", StatusCss(flow.Status));
    }

    /// <summary>A finished exchange's badge colour by status: errors red, success outlined green (white on white said nothing), others outlined.</summary>
    public static string StatusCss(int? status) => status switch
    {
        >= 400 => "text-bg-danger",
        >= 200 and < 300 => "text-bg-light border border-success text-success",
        _ => "text-bg-light border",
    };

    /// <summary>
    /// The title of a flow's "replay" badge, by mitmproxy's <c>is_replay</c>: "request" is WsWeb's replay (or mitmproxy's
    /// client replay, imported); "response" only comes imported, from mitmproxy's server replay.
    /// </summary>
    public static string ReplayTitle(string replay) => replay == "response"
        ? "its response was played back from a recording (mitmproxy's server replay)"
        : "its request was sent again (a replay)";

    /// <summary>Who closed: "client", "server" or "proxy".</summary>
    public static string? ClosedBy(bool? closedByClient, bool closedByProxy = false) =>
        closedByProxy ? "proxy" : closedByClient switch { true => "client", false => "server", null => null };

    public static byte[] ContentBytes(MessageView message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.Encoding == ContentCodec.Base64Name ? Convert.FromBase64String(message.Content) : Encoding.UTF8.GetBytes(message.Content);
    }

    public static byte[]? OriginalBytes(MessageView message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.OriginalContent is null)
        {
            return null;
        }

        return message.OriginalEncoding == ContentCodec.Base64Name ? Convert.FromBase64String(message.OriginalContent) : Encoding.UTF8.GetBytes(message.OriginalContent);
    }

    /// <summary>A one-line preview: the start of the text, or hex of the first bytes of binary content.</summary>
    public static string Preview(MessageView message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Encoding == ContentCodec.Base64Name)
        {
            var bytes = Convert.FromBase64String(message.Content);
            var hex = Convert.ToHexStringLower(bytes.AsSpan(0, Math.Min(bytes.Length, PreviewBytes)));
            var spaced = new StringBuilder(hex.Length * 3 / 2);
            for (var i = 0; i < hex.Length; i += 2)
            {
                if (i > 0)
                {
                    spaced.Append(' ');
                }

                spaced.Append(hex, i, 2);
            }

            return bytes.Length > PreviewBytes ? spaced.Append(" …").ToString() : spaced.ToString();
        }

        var text = message.Content.Length > PreviewChars ? message.Content[..PreviewChars] + "…" : message.Content;
        return ShowInvisible(text.Replace("\r", "", StringComparison.Ordinal).Replace('\n', '⏎').Replace('\t', ' '), controls: true);
    }

    /// <summary>The view a message opens in when the user has not picked one: JSON if it parses, text, or hex for binary.</summary>
    public static string DefaultView(MessageView message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Encoding == ContentCodec.Base64Name)
        {
            return "hex";
        }

        return PrettyJson(message.Content) is not null ? "json" : "text";
    }

    /// <summary>Indented JSON, or null if <paramref name="text"/> is not a JSON object or array.</summary>
    public static string? PrettyJson(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.AsSpan().TrimStart();
        if (trimmed.IsEmpty || (trimmed[0] != '{' && trimmed[0] != '['))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            return JsonSerializer.Serialize(document.RootElement, Indented);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="bytes"/> hold one JSON object or array, by the same rule as <see cref="PrettyJson"/>
    /// but without building a document: for content too large to pretty-print.
    /// </summary>
    public static bool IsJson(ReadOnlySpan<byte> bytes)
    {
        var start = 0;
        while (start < bytes.Length && bytes[start] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            start++;
        }

        if (start == bytes.Length || (bytes[start] != '{' && bytes[start] != '['))
        {
            return false;
        }

        try
        {
            // Throws on anything but whitespace after the value, as JsonDocument.Parse does.
            var reader = new Utf8JsonReader(bytes);
            while (reader.Read())
            {
            }

            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether <paramref name="bytes"/> are UTF-8 text. With <paramref name="cut"/> they are the start of a longer body,
    /// and a character split by the cut does not make them binary.
    /// </summary>
    public static bool IsUtf8(ReadOnlySpan<byte> bytes, bool cut)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return true;
        }

        if (!cut)
        {
            return false;
        }

        // The last character's lead byte is at most 3 bytes from the end; the bytes before it decide, if it is short.
        var start = bytes.Length - 1;
        while (start > 0 && bytes.Length - start < 4 && (bytes[start] & 0xC0) == 0x80)
        {
            start--;
        }

        var needs = bytes[start] switch
        {
            >= 0xC2 and < 0xE0 => 2,
            >= 0xE0 and < 0xF0 => 3,
            >= 0xF0 and <= 0xF4 => 4,
            _ => 1, // not a lead byte: nothing is split
        };
        return bytes.Length - start < needs && System.Text.Unicode.Utf8.IsValid(bytes[..start]);
    }

    /// <summary>Classic hex dump: offset, 16 bytes in two groups of 8, printable ASCII.</summary>
    public static string HexDump(ReadOnlySpan<byte> bytes)
    {
        var shown = bytes[..Math.Min(bytes.Length, MaxViewBytes)];
        var sb = new StringBuilder((shown.Length / 16 + 1) * 78);
        for (var offset = 0; offset < shown.Length; offset += 16)
        {
            var line = shown.Slice(offset, Math.Min(16, shown.Length - offset));
            sb.Append(offset.ToString("x8", CultureInfo.InvariantCulture)).Append("  ");
            for (var i = 0; i < 16; i++)
            {
                if (i < line.Length)
                {
                    sb.Append(line[i].ToString("x2", CultureInfo.InvariantCulture)).Append(' ');
                }
                else
                {
                    sb.Append("   ");
                }

                if (i == 7)
                {
                    sb.Append(' ');
                }
            }

            sb.Append(' ');
            foreach (var b in line)
            {
                sb.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// Text for the text view: UTF-8 with replacement characters for invalid bytes, cut at <see cref="MaxViewBytes"/>,
    /// and bidirectional controls shown (see <see cref="ShowInvisible"/>).
    /// </summary>
    public static string Text(ReadOnlySpan<byte> bytes) => ShowInvisible(Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, MaxViewBytes)]), controls: false);

    /// <summary>
    /// Shows what captured text could hide: bidirectional controls (an RLO makes "lun edirrevo" of "override nul",
    /// so the screen no longer matches the bytes) become <c>⟨U+202E⟩</c>, and with <paramref name="controls"/> the C0
    /// controls other than line breaks and tabs become their control pictures (␀ for NUL).
    /// </summary>
    public static string ShowInvisible(string text, bool controls)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.AsSpan().ContainsAny(controls ? InvisibleWithControls : BidiControls))
        {
            return text;
        }

        var shown = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (BidiControls.Contains(c))
            {
                shown.Append(CultureInfo.InvariantCulture, $"⟨U+{(int)c:X4}⟩");
            }
            else if (controls && (c < 0x20 && c is not ('\n' or '\r' or '\t') || c == 0x7F))
            {
                shown.Append(c == 0x7F ? '\u2421' : (char)(0x2400 + c));
            }
            else
            {
                shown.Append(c);
            }
        }

        return shown.ToString();
    }

    private const string BidiChars = "\u061C\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069";

    private static readonly SearchValues<char> BidiControls = SearchValues.Create(BidiChars);

    private static readonly SearchValues<char> InvisibleWithControls = SearchValues.Create(
        BidiChars + "\u007F" + string.Concat(Enumerable.Range(0, 0x20).Where(c => c is not ('\n' or '\r' or '\t')).Select(c => (char)c)));
}
