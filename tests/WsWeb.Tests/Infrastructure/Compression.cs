using System.IO.Compression;

namespace WsWeb.Tests.Infrastructure;

/// <summary>Bodies under a Content-Encoding, for tests of how WsWeb shows and searches them.</summary>
internal static class Compression
{
    public static byte[] Gzip(byte[] data, CompressionLevel level = CompressionLevel.Fastest) => Compress(data, s => new GZipStream(s, level, leaveOpen: true));

    public static byte[] Brotli(byte[] data) => Compress(data, static s => new BrotliStream(s, CompressionLevel.Optimal, leaveOpen: true));

    private static byte[] Compress(byte[] data, Func<Stream, Stream> encoder)
    {
        using var output = new MemoryStream();
        using (var encoding = encoder(output))
        {
            encoding.Write(data);
        }

        return output.ToArray();
    }
}
