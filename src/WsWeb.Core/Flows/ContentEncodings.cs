using System.IO.Compression;

namespace WsWeb.Core.Flows;

/// <summary>
/// Undoes an HTTP body's <c>Content-Encoding</c>, as mitmproxy's <c>get_content(strict=False)</c>: bodies are
/// recorded as they crossed the wire, and searching or showing them needs what the encoding hides.
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
        ArgumentNullException.ThrowIfNull(raw);
        if (raw.Length == 0 || string.IsNullOrWhiteSpace(contentEncoding))
        {
            return raw;
        }

        var codings = Codings(contentEncoding);
        var data = raw;
        for (var i = codings.Length - 1; i >= 0; i--)
        {
            if (Decode(codings[i], data) is not { } decoded)
            {
                return raw;
            }

            data = decoded;
        }

        return data;
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

    private static byte[]? Decode(string coding, byte[] data) => coding switch
    {
        "identity" or "none" => data,
        "gzip" or "x-gzip" => Read(data, static input => new GZipStream(input, CompressionMode.Decompress)),

        // Servers send both zlib-wrapped and raw deflate under this name; mitmproxy tries them in that order too.
        "deflate" => Read(data, static input => new ZLibStream(input, CompressionMode.Decompress))
            ?? Read(data, static input => new DeflateStream(input, CompressionMode.Decompress)),
        "br" => Read(data, static input => new BrotliStream(input, CompressionMode.Decompress)),
        _ => null,
    };

    private static Stream Encoder(string coding, MemoryStream output) => coding switch
    {
        "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true),
        "deflate" => new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true),
        _ => new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true),
    };

    private static byte[]? Read(byte[] data, Func<Stream, Stream> decoder)
    {
        try
        {
            using var decoding = decoder(new MemoryStream(data, writable: false));
            using var output = new MemoryStream((int)Math.Min(data.Length * 4L, MaxDecodedLength));
            var buffer = new byte[81920];
            int read;
            while ((read = decoding.Read(buffer)) > 0)
            {
                if (output.Length + read > MaxDecodedLength)
                {
                    return null;
                }

                output.Write(buffer, 0, read);
            }

            return output.ToArray();
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }
}
