using WsWeb.Core.Flows;

namespace WsWeb.Core.Formats;

/// <summary>Export and import of flows in every supported <see cref="FlowFormat"/>.</summary>
public static class FlowFormats
{
    /// <summary>How many leading bytes <see cref="Detect"/> looks at.</summary>
    public const int DetectLength = 4096;

    /// <summary>Writes <paramref name="flows"/> to <paramref name="output"/>; the stream is flushed, not closed.</summary>
    public static void Export(IEnumerable<HttpFlow> flows, FlowFormat format, Stream output)
    {
        ArgumentNullException.ThrowIfNull(flows);
        ArgumentNullException.ThrowIfNull(output);
        switch (format)
        {
            case FlowFormat.Json:
                JsonFlowFormat.Write(flows, output);
                break;
            case FlowFormat.Har:
                HarFlowFormat.Write(flows, output);
                break;
            case FlowFormat.Mitmproxy:
                MitmproxyFlowFormat.Write(flows, output);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown flow format.");
        }

        output.Flush();
    }

    /// <summary>
    /// Reads flows from untrusted input. The input is read into memory up to
    /// <see cref="FlowImportOptions.MaxInputBytes"/>; anything wrong with it is a
    /// <see cref="FlowFormatException"/> saying what and where.
    /// </summary>
    /// <param name="format">The format, or null to detect it from the first bytes.</param>
    public static FlowImportResult Import(Stream input, FlowFormat? format = null, FlowImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Import(ReadBounded(input, (options ?? FlowImportOptions.Default).MaxInputBytes), format, options);
    }

    /// <summary>Reads flows from untrusted input already in memory (see <see cref="Import(Stream, FlowFormat?, FlowImportOptions?)"/>).</summary>
    public static FlowImportResult Import(ReadOnlyMemory<byte> data, FlowFormat? format = null, FlowImportOptions? options = null)
    {
        options ??= FlowImportOptions.Default;
        if (format is { } given && !Enum.IsDefined(given))
        {
            throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown flow format.");
        }

        if (data.Length > options.MaxInputBytes)
        {
            throw new FlowFormatException($"the input is larger than the limit of {options.MaxInputBytes} bytes");
        }

        // Also when the format is given: a compressed file would otherwise fail on its first byte with no hint why.
        ThrowIfCompressed(data.Span);
        var detected = format ?? Detect(data.Span[..Math.Min(data.Length, DetectLength)]);
        try
        {
            var result = detected switch
            {
                FlowFormat.Json => JsonFlowFormat.Read(data, options),
                FlowFormat.Har => HarFlowFormat.Read(data, options),
                _ => MitmproxyFlowFormat.Read(data.Span, options),
            };
            return result with { Trimmed = TrimmedOnImport(result.Flows) };
        }
        catch (Exception e) when (e is not FlowFormatException and not OutOfMemoryException)
        {
            // A reader bug must not surface as a 500 with a stack trace; report it as bad input instead.
            throw new FlowFormatException($"cannot read the {Name(detected)} file: {e.Message}", e);
        }
    }

    private static List<TrimmedOnImport> TrimmedOnImport(IReadOnlyList<HttpFlow> flows)
    {
        var trimmed = new List<TrimmedOnImport>();
        foreach (var flow in flows)
        {
            if (flow.WebSocket is { TrimmedHere: > 0 and var count } ws)
            {
                var (byMaxMessages, byMaxBytes) = ws.BoundsCrossed;
                trimmed.Add(new TrimmedOnImport(flow, count, count + ws.Messages.Count, byMaxMessages, byMaxBytes));
            }
        }

        return trimmed;
    }

    /// <summary>Guesses the format from the first bytes of a file (see <see cref="DetectLength"/>).</summary>
    /// <exception cref="FlowFormatException">The bytes look like none of the formats.</exception>
    public static FlowFormat Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("\uFEFF"u8))
        {
            head = head[3..];
        }

        var start = head.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0)
        {
            throw new FlowFormatException("the input is empty");
        }

        head = head[start..];
        if (head[0] is >= (byte)'0' and <= (byte)'9')
        {
            var colon = head.IndexOf((byte)':');
            if (colon is > 0 and <= 12 && head[..colon].IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0)
            {
                return FlowFormat.Mitmproxy;
            }
        }
        else if (head[0] == '{')
        {
            var json = head;
            if (json.IndexOf("\"wsweb-flows\""u8) >= 0)
            {
                return FlowFormat.Json;
            }

            if (json.IndexOf("\"log\""u8) >= 0)
            {
                return FlowFormat.Har;
            }

            throw new FlowFormatException($"JSON input is neither WsWeb flows (\"format\": \"wsweb-flows\" in the first {DetectLength} bytes) nor HAR (\"log\")");
        }

        ThrowIfCompressed(head);
        throw new FlowFormatException("unrecognised input: expected a mitmproxy flow file, a HAR file or WsWeb JSON");
    }

    /// <summary>
    /// A compressed capture is a common upload mistake (capture.har.gz, a zipped export): name it rather than
    /// report a bad first byte. We do not inflate it ourselves: the size bound would then hold for the
    /// archive, not for what it unpacks to.
    /// </summary>
    private static void ThrowIfCompressed(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B]))
        {
            throw new FlowFormatException("the input looks gzip-compressed (it starts with 1F 8B): decompress it first (gunzip) and import the file inside");
        }

        if (head.StartsWith("PK\u0003\u0004"u8) || head.StartsWith("PK\u0005\u0006"u8))
        {
            throw new FlowFormatException("the input looks like a zip archive (it starts with PK): extract the capture from it first and import that file");
        }
    }

    private static string Name(FlowFormat format) => format switch
    {
        FlowFormat.Json => "WsWeb JSON",
        FlowFormat.Har => "HAR",
        _ => "mitmproxy flow",
    };

    public static string ContentType(FlowFormat format) => format switch
    {
        FlowFormat.Json => "application/json",
        FlowFormat.Har => "application/json",
        FlowFormat.Mitmproxy => "application/octet-stream",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown flow format."),
    };

    /// <summary>The usual file extension, with the dot (mitmproxy's own is ".mitm"; it reads any name).</summary>
    public static string FileExtension(FlowFormat format) => format switch
    {
        FlowFormat.Json => ".json",
        FlowFormat.Har => ".har",
        FlowFormat.Mitmproxy => ".mitm",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown flow format."),
    };

    private static ReadOnlyMemory<byte> ReadBounded(Stream input, long maxBytes)
    {
        var limit = (int)Math.Min(maxBytes, Array.MaxLength);
        var buffer = new byte[Math.Min(limit + 1L, 81920)];
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (filled > limit)
                {
                    break;
                }

                Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, limit + 1L));
            }

            int n;
            try
            {
                n = input.Read(buffer, filled, buffer.Length - filled);
            }
            catch (IOException e)
            {
                throw new FlowFormatException($"cannot read the input: {e.Message}", e);
            }

            if (n == 0)
            {
                break;
            }

            filled += n;
        }

        if (filled > limit)
        {
            throw new FlowFormatException($"the input is larger than the limit of {maxBytes} bytes");
        }

        return buffer.AsMemory(0, filled);
    }
}
