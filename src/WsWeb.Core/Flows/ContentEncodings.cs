using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace WsWeb.Core.Flows;

/// <summary>
/// Undoes an HTTP body's <c>Content-Encoding</c>, as mitmproxy's <c>get_content</c>: bodies are recorded as they
/// crossed the wire, and searching or showing them needs what the encoding hides.
/// </summary>
public static class ContentEncodings
{
    /// <summary>Decoded bodies larger than this are not produced (a small gzip can expand without bound).</summary>
    public const int MaxDecodedLength = 64 * 1024 * 1024;

    /// <summary>
    /// The body with every coding of <paramref name="contentEncoding"/> undone (last applied, first undone). The raw
    /// body when there is none, when a coding is unknown (zstd, say) or the bytes do not decode, or when the result
    /// would pass <see cref="MaxDecodedLength"/>.
    /// </summary>
    public static byte[] DecodeOrRaw(string? contentEncoding, byte[] raw)
    {
        // Lenient about an end that is missing: a search finds more in the part of a cut-short body that decodes than
        // in its compressed bytes.
        var decoded = Decode(contentEncoding, raw, MaxDecodedLength, complete: false);
        return decoded.Cut || decoded.Problem is not null ? raw : decoded.Content;
    }

    /// <summary>How much of a decoded body a filter searches (<c>~b</c>): the page shows no more either.</summary>
    public const int MaxSearchedLength = 4 * 1024 * 1024;

    /// <summary>
    /// What <c>~b</c> searches: the first <see cref="MaxSearchedLength"/> bytes of the body decoded, or the raw body when
    /// it does not decode. A query runs this for every flow each time, and a small gzip that expands to hundreds of
    /// MiB must cost what the bound costs, not what the bomb would.
    /// </summary>
    public static byte[] DecodeForSearch(string? contentEncoding, byte[] raw)
    {
        var decoded = Decode(contentEncoding, raw, MaxSearchedLength, complete: false);
        return decoded.Problem is null ? decoded.Content : raw;
    }

    /// <summary>
    /// The body with every coding of <paramref name="contentEncoding"/> undone (last applied, first undone), for
    /// showing it: at most <paramref name="maxLength"/> bytes of it, or the raw body and why not.
    /// </summary>
    /// <param name="complete">
    /// Whether <paramref name="raw"/> is the whole body. A stream that ends early is then a fault; in the start of a body
    /// (its recording was cut) it is expected, and the body decodes as far as it goes.
    /// </param>
    public static DecodedContent Decode(string? contentEncoding, byte[] raw, int maxLength, bool complete = true)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        string[] codings = string.IsNullOrWhiteSpace(contentEncoding) ? [] : [.. Codings(contentEncoding).Where(static coding => coding is not ("identity" or "none"))];
        if (raw.Length == 0 || codings.Length == 0)
        {
            return new DecodedContent(raw, [], Cut: false, Problem: null);
        }

        var data = raw;
        var cut = false;
        for (var i = codings.Length - 1; i >= 0; i--)
        {
            // Each step is bounded, not only the last: the middle of "gzip, br" can be a bomb too. A step cut at the
            // bound hands on only the start of its output, which the next step decodes as far as it goes.
            var step = DecodeOne(codings[i], data, maxLength, complete && !cut);
            if (step.Problem is not null)
            {
                return new DecodedContent(raw, [], Cut: false, $"could not {codings[i]}-decode: {step.Problem}");
            }

            data = step.Output;
            cut |= step.Cut;
        }

        return new DecodedContent(data, codings, cut, Problem: null);
    }

    /// <summary>
    /// A body as it would cross the wire under <paramref name="contentEncoding"/>, from one given decoded (HAR holds
    /// bodies so). A body that already decodes under it (a file that held the wire bytes) is returned as it is, and
    /// so is one under a coding this cannot produce.
    /// </summary>
    public static byte[] EncodeUnlessEncoded(string? contentEncoding, byte[] body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.Length == 0 || string.IsNullOrWhiteSpace(contentEncoding) || !ReferenceEquals(DecodeOrRaw(contentEncoding, body), body))
        {
            return body;
        }

        var codings = Codings(contentEncoding);
        if (!codings.All(static coding => coding is "identity" or "none" or "gzip" or "x-gzip" or "deflate" or "br"))
        {
            return body;
        }

        var data = body;
        foreach (var coding in codings.Where(static coding => coding is not ("identity" or "none")))
        {
            using var output = new MemoryStream();
            using (var encoder = Encoder(coding, output))
            {
                encoder.Write(data);
            }

            data = output.ToArray();
        }

        return data;
    }

    /// <summary>The codings of a Content-Encoding value, lower-cased, in the order they were applied.</summary>
    private static string[] Codings(string contentEncoding) =>
        [.. contentEncoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(static coding => coding.ToLowerInvariant())];

    private static Step DecodeOne(string coding, byte[] data, int maxLength, bool complete) => coding switch
    {
        "gzip" or "x-gzip" => Inflate(data, maxLength, complete, "gzip", static input => new GZipStream(input, CompressionMode.Decompress), GzipTrailerMatches),

        "deflate" => Deflate(data, maxLength, complete),
        "br" => Brotli(data, maxLength, complete),
        _ => new Step([], false, $"WsWeb does not know the {coding} encoding"),
    };

    private static Step Deflate(byte[] data, int maxLength, bool complete)
    {
        // Servers send both zlib-wrapped and raw deflate under this name; mitmproxy tries them in that order too.
        // Raw deflate has no trailer to check, so one cut short cannot be told from a whole one: it shows as far as it goes.
        var zlib = Inflate(data, maxLength, complete, "zlib", static input => new ZLibStream(input, CompressionMode.Decompress), ZlibTrailerMatches);
        if (zlib.Problem is null)
        {
            return zlib;
        }

        var deflate = Inflate(data, maxLength, complete, "deflate", static input => new DeflateStream(input, CompressionMode.Decompress), trailerMatches: null);
        if (deflate.Problem is null)
        {
            return deflate;
        }

        // What went wrong with the form the data starts as: a zlib header (method 8, check bits) or not.
        return data.Length >= 2 && (data[0] & 0x0F) == 8 && ((data[0] << 8) | data[1]) % 31 == 0 ? zlib : deflate;
    }

    private static Stream Encoder(string coding, MemoryStream output) => coding switch
    {
        "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true),
        "deflate" => new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true),
        _ => new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true),
    };

    private static Step Inflate(byte[] data, int maxLength, bool complete, string name, Func<Stream, Stream> decoder, Func<byte[], byte[], bool>? trailerMatches)
    {
        byte[] output;
        bool cut;
        try
        {
            using var decoding = decoder(new MemoryStream(data, writable: false));
            (output, cut) = ReadAtMost(decoding, maxLength, data.Length);
        }
        catch (InvalidDataException)
        {
            return new Step([], false, $"the data is not valid {name}");
        }

        // .NET's inflating streams end quietly where their input does, so a stream cut short reads as a whole one; only
        // its trailer (the checksum and length of what it holds) tells them apart. A cut output cannot be checked.
        if (complete && !cut && trailerMatches is not null && !trailerMatches(data, output))
        {
            return new Step([], false, $"the {name} stream is cut short or corrupt (its trailer does not match the data)");
        }

        return new Step(output, cut, null);
    }

    private static (byte[] Output, bool Cut) ReadAtMost(Stream decoding, int maxLength, int inputLength)
    {
        using var output = new MemoryStream((int)Math.Min(inputLength * 4L, maxLength));
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (true)
            {
                // One byte past the bound says whether there is more.
                var read = decoding.Read(buffer, 0, (int)Math.Min(buffer.Length, maxLength - output.Length + 1));
                if (read == 0)
                {
                    return (output.ToArray(), false);
                }

                if (output.Length + read > maxLength)
                {
                    output.Write(buffer, 0, maxLength - (int)output.Length);
                    return (output.ToArray(), true);
                }

                output.Write(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Brotli through its decoder rather than BrotliStream: the decoder tells a stream that ends early (BrotliStream ends
    /// quietly), and says "invalid data" where BrotliStream throws an InvalidOperationException.
    /// </summary>
    private static Step Brotli(byte[] data, int maxLength, bool complete)
    {
        // Not a using declaration: that makes the local read-only, and Decompress would then run on a copy of the struct.
        var decoder = new BrotliDecoder();
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            using var output = new MemoryStream((int)Math.Min(data.Length * 4L, maxLength));
            ReadOnlySpan<byte> source = data;
            while (true)
            {
                var status = decoder.Decompress(source, buffer, out var consumed, out var written);
                source = source[consumed..];
                if (output.Length + written > maxLength)
                {
                    output.Write(buffer, 0, maxLength - (int)output.Length);
                    return new Step(output.ToArray(), true, null);
                }

                output.Write(buffer, 0, written);
                switch (status)
                {
                    case OperationStatus.DestinationTooSmall:
                        continue;
                    case OperationStatus.Done when complete && !source.IsEmpty:
                        return new Step([], false, $"{source.Length} bytes follow the end of the brotli stream");
                    case OperationStatus.Done:
                        return new Step(output.ToArray(), false, null);
                    case OperationStatus.NeedMoreData when complete:
                        return new Step([], false, "the data ends before the brotli stream does");
                    case OperationStatus.NeedMoreData:
                        return new Step(output.ToArray(), false, null);
                    default:
                        return new Step([], false, "the data is not valid brotli");
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            decoder.Dispose();
        }
    }

    /// <summary>
    /// The last gzip member's trailer: the CRC-32 and length (mod 2^32) of what it decoded to, which are the end of the
    /// output (a body may hold several members; GZipStream reads them all).
    /// </summary>
    private static bool GzipTrailerMatches(byte[] data, byte[] output)
    {
        const int SmallestMember = 10 + 2 + 8; // header, an empty final block, trailer
        if (data.Length < SmallestMember)
        {
            return false;
        }

        var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 8));
        var length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 4));
        return length <= (uint)output.Length && Crc32(output.AsSpan(output.Length - (int)length)) == crc;
    }

    /// <summary>A zlib stream's trailer: the Adler-32 of all it decoded to, big-endian.</summary>
    private static bool ZlibTrailerMatches(byte[] data, byte[] output) =>
        data.Length >= 2 + 4 && BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(data.Length - 4)) == Adler32(output);

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < table.Length; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc ^ 0xFFFFFFFFu;
    }

    private static uint Adler32(ReadOnlySpan<byte> bytes)
    {
        const uint Modulus = 65521;

        // The sums stay below 2^32 for this many bytes between reductions (zlib's NMAX).
        const int Run = 5552;
        uint a = 1, b = 0;
        while (!bytes.IsEmpty)
        {
            var run = bytes[..Math.Min(Run, bytes.Length)];
            foreach (var x in run)
            {
                a += x;
                b += a;
            }

            a %= Modulus;
            b %= Modulus;
            bytes = bytes[run.Length..];
        }

        return (b << 16) | a;
    }

    private readonly record struct Step(byte[] Output, bool Cut, string? Problem);
}

/// <summary>What <see cref="ContentEncodings.Decode"/> made of a body.</summary>
/// <param name="Content">The decoded body, or its start when <paramref name="Cut"/>; the raw body when <paramref name="Codings"/> is empty.</param>
/// <param name="Codings">The codings undone, in the order they were applied (identity left out); empty when nothing was.</param>
/// <param name="Cut">The decoded body is longer than the bound asked for: <paramref name="Content"/> is its start.</param>
/// <param name="Problem">Why a body that names codings is left raw ("could not gzip-decode: …"); null when it is not.</param>
public sealed record DecodedContent(byte[] Content, IReadOnlyList<string> Codings, bool Cut, string? Problem);
