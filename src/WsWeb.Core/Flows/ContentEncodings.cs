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

        var codings = contentEncoding.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
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

    /// <summary>The decoded body of a request or response (see <see cref="DecodeOrRaw"/>); null when it has none.</summary>
    public static byte[]? DecodedContent(HeaderList headers, byte[]? content) =>
        content is null ? null : DecodeOrRaw(headers["Content-Encoding"], content);

    private static byte[]? Decode(string coding, byte[] data) => coding.ToLowerInvariant() switch
    {
        "identity" or "none" => data,
        "gzip" or "x-gzip" => Read(data, static input => new GZipStream(input, CompressionMode.Decompress)),

        // Servers send both zlib-wrapped and raw deflate under this name; mitmproxy tries them in that order too.
        "deflate" => Read(data, static input => new ZLibStream(input, CompressionMode.Decompress))
            ?? Read(data, static input => new DeflateStream(input, CompressionMode.Decompress)),
        "br" => Read(data, static input => new BrotliStream(input, CompressionMode.Decompress)),
        _ => null,
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
