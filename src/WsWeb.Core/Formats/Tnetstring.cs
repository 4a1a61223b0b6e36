using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace WsWeb.Core.Formats;

/// <summary>Bounds for reading untrusted tnetstrings.</summary>
public sealed record TnetstringReaderOptions
{
    public static readonly TnetstringReaderOptions Default = new();

    /// <summary>Largest declared payload length accepted, in bytes.</summary>
    public long MaxLength { get; init; } = 256L * 1024 * 1024;

    /// <summary>Deepest nesting of lists and dictionaries accepted (a flow needs about 5).</summary>
    public int MaxDepth { get; init; } = 64;
}

/// <summary>
/// Reads and writes tnetstrings (<c>LENGTH:PAYLOAD TAG</c>), the encoding of mitmproxy flow files.
/// </summary>
/// <remarks>
/// Reading is strict where mitmproxy is lax: the length prefix is 1–12 digits with no leading zero, every
/// declared length is checked against the limit and against the bytes actually present before anything is
/// allocated, nesting is bounded, and <c>;</c> strings must be valid UTF-8. Every failure is a
/// <see cref="TnetstringException"/> carrying the byte offset.
/// </remarks>
public static class Tnetstring
{
    private const int MaxPrefixDigits = 12;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    /// <summary>Parses exactly one value that spans all of <paramref name="data"/>.</summary>
    public static TnetValue Parse(ReadOnlySpan<byte> data, TnetstringReaderOptions? options = null)
    {
        var position = 0;
        var value = ReadNext(data, ref position, options);
        if (position != data.Length)
        {
            throw new TnetstringException($"unexpected data after the tnetstring at byte {position}", position);
        }

        return value;
    }

    /// <summary>
    /// Parses the value starting at <paramref name="position"/> and moves past it; use it to walk values
    /// written back to back. <paramref name="baseOffset"/> is added to offsets in values and errors.
    /// </summary>
    public static TnetValue ReadNext(ReadOnlySpan<byte> data, ref int position, TnetstringReaderOptions? options = null, long baseOffset = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(position, data.Length);
        return ParseElement(data, ref position, baseOffset, 1, options ?? TnetstringReaderOptions.Default);
    }

    /// <summary>
    /// Reads one value from <paramref name="stream"/>, consuming nothing after it. Returns null at a clean end
    /// of stream. The payload buffer grows with the bytes that actually arrive, so a huge declared length
    /// costs nothing until the data is there.
    /// </summary>
    /// <param name="streamOffset">Offset of the stream's current position, for error messages.</param>
    public static TnetValue? ReadFrom(Stream stream, TnetstringReaderOptions? options = null, long streamOffset = 0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= TnetstringReaderOptions.Default;
        var first = stream.ReadByte();
        if (first < 0)
        {
            return null;
        }

        long length = 0;
        var digits = 0;
        var b = first;
        while (b is >= '0' and <= '9')
        {
            if (++digits > MaxPrefixDigits)
            {
                throw BadLength(streamOffset, $"more than {MaxPrefixDigits} digits");
            }

            if (digits == 2 && first == '0')
            {
                throw BadLength(streamOffset, "leading zero");
            }

            length = length * 10 + (b - '0');
            b = stream.ReadByte();
        }

        if (b < 0)
        {
            throw new TnetstringException($"truncated tnetstring at byte {streamOffset}: the input ends inside the length prefix", streamOffset) { IsTruncated = true };
        }

        if (digits == 0 || b != ':')
        {
            throw BadLength(streamOffset, digits == 0 ? $"expected a digit, found {Describe((byte)b)}" : $"expected ':', found {Describe((byte)b)}");
        }

        CheckLimit(length, streamOffset, options);
        var prefixLength = digits + 1;
        var total = length + 1;
        var buffer = new byte[(int)Math.Min(total, 64 * 1024)];
        long filled = 0;
        while (filled < total)
        {
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min(total, (long)buffer.Length * 2));
            }

            var n = stream.Read(buffer, (int)filled, buffer.Length - (int)filled);
            if (n == 0)
            {
                throw Truncated(streamOffset, length, filled);
            }

            filled += n;
        }

        var payloadOffset = streamOffset + prefixLength;
        return ParseBody(buffer.AsSpan(0, (int)length), buffer[(int)length], payloadOffset, payloadOffset + length, streamOffset, 1, options);
    }

    /// <summary>Serializes <paramref name="value"/> to a new array.</summary>
    public static byte[] Serialize(TnetValue value)
    {
        var writer = new ArrayBufferWriter<byte>();
        Write(value, writer);
        return writer.WrittenSpan.ToArray();
    }

    public static void Write(TnetValue value, Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var writer = new ArrayBufferWriter<byte>();
        Write(value, writer);
        output.Write(writer.WrittenSpan);
    }

    public static void Write(TnetValue value, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(output);
        WriteElement(value, output);
    }

    private static TnetValue ParseElement(ReadOnlySpan<byte> data, ref int pos, long baseOffset, int depth, TnetstringReaderOptions options)
    {
        var start = pos;
        var at = baseOffset + start;
        long length = 0;
        var digits = 0;
        while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9')
        {
            if (++digits > MaxPrefixDigits)
            {
                throw BadLength(at, $"more than {MaxPrefixDigits} digits");
            }

            length = length * 10 + (data[pos] - '0');
            pos++;
        }

        if (pos >= data.Length)
        {
            throw new TnetstringException(
                digits == 0 ? $"truncated tnetstring at byte {at}: expected a length prefix" : $"truncated tnetstring at byte {at}: the input ends inside the length prefix",
                at)
            { IsTruncated = true };
        }

        if (digits == 0)
        {
            throw BadLength(at, $"expected a digit, found {Describe(data[pos])}");
        }

        if (digits > 1 && data[start] == '0')
        {
            throw BadLength(at, "leading zero");
        }

        if (data[pos] != ':')
        {
            throw BadLength(at, $"expected ':', found {Describe(data[pos])}");
        }

        pos++;
        CheckLimit(length, at, options);
        long available = data.Length - pos;
        if (length + 1 > available)
        {
            throw Truncated(at, length, Math.Max(0, available - 1));
        }

        var payload = data.Slice(pos, (int)length);
        var tagIndex = pos + (int)length;
        pos = tagIndex + 1;
        return ParseBody(payload, data[tagIndex], baseOffset + start + digits + 1, baseOffset + tagIndex, at, depth, options);
    }

    private static TnetValue ParseBody(ReadOnlySpan<byte> payload, byte tag, long payloadOffset, long tagOffset, long at, int depth, TnetstringReaderOptions options)
    {
        switch (tag)
        {
            case (byte)',':
                return new TnetBytes(payload.ToArray(), at);
            case (byte)';':
                return new TnetString(DecodeUtf8(payload, payloadOffset), at);
            case (byte)'#':
                return new TnetInt(ParseInt(payload, at), at);
            case (byte)'^':
                return PythonFloat.TryParse(payload, out var d)
                    ? new TnetFloat(d, at)
                    : throw new TnetstringException($"invalid float literal at byte {at}: {Preview(payload)}", at);
            case (byte)'!':
                return payload.SequenceEqual("true"u8) ? new TnetBool(true, at)
                    : payload.SequenceEqual("false"u8) ? new TnetBool(false, at)
                    : throw new TnetstringException($"invalid boolean literal at byte {at}: {Preview(payload)}", at);
            case (byte)'~':
                return payload.IsEmpty ? new TnetNull(at) : throw new TnetstringException($"invalid null literal at byte {at}: a null has an empty payload", at);
            case (byte)']':
            {
                CheckDepth(depth, at, options);
                var items = new List<TnetValue>();
                var p = 0;
                while (p < payload.Length)
                {
                    try
                    {
                        items.Add(ParseElement(payload, ref p, payloadOffset, depth + 1, options));
                    }
                    catch (TnetstringException e)
                    {
                        throw e.Within($"[{items.Count.ToString(CultureInfo.InvariantCulture)}]");
                    }
                }

                return new TnetList(items, at);
            }

            case (byte)'}':
            {
                CheckDepth(depth, at, options);
                var dict = new TnetDict(at);
                var p = 0;
                while (p < payload.Length)
                {
                    var keyAt = payloadOffset + p;
                    var key = ParseElement(payload, ref p, payloadOffset, depth + 1, options);
                    if (key is not TnetString s)
                    {
                        throw new TnetstringException($"dictionary key at byte {keyAt} is a {key.TypeName}, not a str", keyAt);
                    }

                    if (p >= payload.Length)
                    {
                        throw new TnetstringException($"truncated tnetstring at byte {payloadOffset + p}: dictionary key '{s.Value}' has no value", payloadOffset + p);
                    }

                    try
                    {
                        dict.Set(s.Value, ParseElement(payload, ref p, payloadOffset, depth + 1, options));
                    }
                    catch (TnetstringException e)
                    {
                        // "integer out of range at byte 139" alone does not say which field to look at.
                        throw e.Within(s.Value);
                    }
                }

                return dict;
            }

            default:
                throw new TnetstringException($"unknown type tag {Describe(tag)} at byte {tagOffset}", tagOffset);
        }
    }

    private static string DecodeUtf8(ReadOnlySpan<byte> payload, long payloadOffset)
    {
        var chars = new char[payload.Length];
        var status = System.Text.Unicode.Utf8.ToUtf16(payload, chars, out var read, out var written, replaceInvalidSequences: false);
        if (status != OperationStatus.Done)
        {
            var where = payloadOffset + read;
            throw new TnetstringException($"invalid UTF-8 in string at byte {where}", where);
        }

        return new string(chars, 0, written);
    }

    private static long ParseInt(ReadOnlySpan<byte> payload, long at)
    {
        // Python's str(int) writes an optional '-' and digits; anything else is not ours to guess at.
        var digits = payload.Length > 0 && payload[0] == '-' ? payload[1..] : payload;
        if (digits.IsEmpty || digits.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
        {
            throw new TnetstringException($"invalid integer literal at byte {at}: {Preview(payload)}", at);
        }

        if (!Utf8Parser.TryParse(payload, out long value, out var consumed) || consumed != payload.Length)
        {
            throw new TnetstringException($"integer out of range at byte {at}: {Preview(payload)}", at);
        }

        return value;
    }

    private static void CheckLimit(long length, long at, TnetstringReaderOptions options)
    {
        if (length > options.MaxLength || length > Array.MaxLength - 1)
        {
            throw new TnetstringException(
                $"bad tnetstring length at byte {at}: {length.ToString(CultureInfo.InvariantCulture)} bytes declared, the limit is {options.MaxLength.ToString(CultureInfo.InvariantCulture)}",
                at);
        }
    }

    private static void CheckDepth(int depth, long at, TnetstringReaderOptions options)
    {
        if (depth > options.MaxDepth)
        {
            throw new TnetstringException($"nesting deeper than {options.MaxDepth} at byte {at}", at);
        }
    }

    private static TnetstringException BadLength(long at, string detail) =>
        new($"bad tnetstring length at byte {at}: {detail}", at);

    private static TnetstringException Truncated(long at, long length, long available) =>
        new($"truncated tnetstring at byte {at}: {length} bytes and a type tag declared, only {available} bytes follow", at) { IsTruncated = true };

    private static string Describe(byte b) => b is >= 0x20 and < 0x7F ? $"'{(char)b}'" : $"0x{b:X2}";

    private static string Preview(ReadOnlySpan<byte> payload)
    {
        var shown = payload[..Math.Min(payload.Length, 32)];
        var text = Utf8.GetString(shown);
        return payload.Length > shown.Length ? $"\"{text}…\"" : $"\"{text}\"";
    }

    private static void WriteElement(TnetValue value, IBufferWriter<byte> output)
    {
        var length = PayloadLength(value);
        WriteAscii(length.ToString(CultureInfo.InvariantCulture), output);
        WriteByte((byte)':', output);
        switch (value)
        {
            case TnetBytes b:
                output.Write(b.Value);
                break;
            case TnetString s:
                var span = output.GetSpan((int)length);
                var n = Utf8.GetBytes(s.Value, span);
                output.Advance(n);
                break;
            case TnetInt or TnetFloat or TnetBool:
                WriteAscii(value.ToString()!, output);
                break;
            case TnetNull:
                break;
            case TnetList list:
                foreach (var item in list.Items)
                {
                    WriteElement(item, output);
                }

                break;
            case TnetDict dict:
                foreach (var (key, item) in dict.Entries)
                {
                    WriteElement(new TnetString(key), output);
                    WriteElement(item, output);
                }

                break;
            default:
                throw new ArgumentException($"Unknown tnetstring value {value.GetType().Name}.", nameof(value));
        }

        WriteByte((byte)value.Tag, output);
    }

    private static long EncodedLength(TnetValue value)
    {
        var payload = PayloadLength(value);
        return DigitCount(payload) + 2 + payload;
    }

    private static long PayloadLength(TnetValue value) => value switch
    {
        TnetBytes b => b.Value.Length,
        TnetString s => Utf8.GetByteCount(s.Value),
        TnetInt or TnetFloat or TnetBool => value.ToString()!.Length,
        TnetNull => 0,
        TnetList list => list.Items.Sum(EncodedLength),
        TnetDict dict => dict.Entries.Sum(e => EncodedLength(new TnetString(e.Key)) + EncodedLength(e.Value)),
        _ => throw new ArgumentException($"Unknown tnetstring value {value.GetType().Name}.", nameof(value)),
    };

    private static int DigitCount(long n)
    {
        var digits = 1;
        while (n >= 10)
        {
            n /= 10;
            digits++;
        }

        return digits;
    }

    private static void WriteAscii(string s, IBufferWriter<byte> output)
    {
        var span = output.GetSpan(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            span[i] = (byte)s[i];
        }

        output.Advance(s.Length);
    }

    private static void WriteByte(byte b, IBufferWriter<byte> output)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }
}
