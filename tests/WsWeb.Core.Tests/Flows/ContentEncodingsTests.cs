using System.IO.Compression;
using System.Text;
using WsWeb.Core.Flows;

namespace WsWeb.Core.Tests.Flows;

public sealed class ContentEncodingsTests
{
    private const int Max = 1024 * 1024;

    private static readonly byte[] Page = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 400).Select(i => $"<p>line {i} of the page</p>\n")));

    [Theory]
    [InlineData("gzip")]
    [InlineData("x-gzip")]
    [InlineData("br")]
    [InlineData("deflate")]
    [InlineData(" GZip ")]
    public void A_body_under_one_coding_decodes_and_says_which(string coding)
    {
        var decoded = ContentEncodings.Decode(coding, Encode(coding.Trim().ToLowerInvariant(), Page), Max);

        Assert.Equal(Page, decoded.Content);
        Assert.Equal([coding.Trim().ToLowerInvariant()], decoded.Codings);
        Assert.False(decoded.Cut);
        Assert.Null(decoded.Problem);
    }

    [Fact]
    public void Raw_deflate_without_the_zlib_wrapper_decodes_too()
    {
        var decoded = ContentEncodings.Decode("deflate", Compress(Page, static s => new DeflateStream(s, CompressionLevel.Optimal, leaveOpen: true)), Max);

        Assert.Equal(Page, decoded.Content);
        Assert.Null(decoded.Problem);
    }

    [Fact]
    public void Several_codings_are_undone_last_applied_first()
    {
        // "gzip, br": gzip was applied first, then br over it.
        var wire = Encode("br", Encode("gzip", Page));

        var decoded = ContentEncodings.Decode("gzip, br", wire, Max);

        Assert.Equal(Page, decoded.Content);
        Assert.Equal(["gzip", "br"], decoded.Codings);
        Assert.Equal("could not gzip-decode: the data is not valid gzip", ContentEncodings.Decode("br, gzip", wire, Max).Problem);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("identity")]
    [InlineData("Identity, identity")]
    public void No_coding_or_identity_leaves_the_body_as_it_is(string? coding)
    {
        var decoded = ContentEncodings.Decode(coding, Page, Max);

        Assert.Same(Page, decoded.Content);
        Assert.Empty(decoded.Codings);
        Assert.Null(decoded.Problem);
    }

    [Fact]
    public void Identity_among_codings_is_skipped()
    {
        var decoded = ContentEncodings.Decode("identity, gzip", Encode("gzip", Page), Max);

        Assert.Equal(Page, decoded.Content);
        Assert.Equal(["gzip"], decoded.Codings);
    }

    [Fact]
    public void An_unknown_coding_leaves_the_body_raw_and_says_so()
    {
        var wire = Encode("gzip", Page);

        var decoded = ContentEncodings.Decode("gzip, zstd", wire, Max);

        Assert.Same(wire, decoded.Content);
        Assert.Empty(decoded.Codings);
        Assert.Equal("could not zstd-decode: WsWeb does not know the zstd encoding", decoded.Problem);
    }

    [Theory]
    [InlineData("gzip", "could not gzip-decode: the gzip stream is cut short or corrupt (its trailer does not match the data)")]
    [InlineData("deflate", "could not deflate-decode: the zlib stream is cut short or corrupt (its trailer does not match the data)")]
    [InlineData("br", "could not br-decode: the data ends before the brotli stream does")]
    public void A_stream_cut_short_is_left_raw_with_why(string coding, string problem)
    {
        var whole = Encode(coding, Page);
        foreach (var cut in new[] { whole.Length / 2, whole.Length - 4, whole.Length - 1 })
        {
            var wire = whole[..cut];

            var decoded = ContentEncodings.Decode(coding, wire, Max);

            Assert.Equal(wire, decoded.Content);
            Assert.Empty(decoded.Codings);
            Assert.Equal(problem, decoded.Problem);
        }
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    public void The_start_of_a_body_whose_recording_was_cut_decodes_as_far_as_it_goes(string coding)
    {
        var wire = Encode(coding, Page);

        var decoded = ContentEncodings.Decode(coding, wire[..(wire.Length / 2)], Max, complete: false);

        Assert.Null(decoded.Problem);
        Assert.NotEmpty(decoded.Content);
        Assert.True(decoded.Content.Length < Page.Length);
        Assert.Equal(Page[..decoded.Content.Length], decoded.Content);
    }

    [Fact]
    public void Bytes_after_the_end_of_the_stream_are_a_problem_as_in_mitmproxy()
    {
        byte[] junk = [.. "junk"u8];
        Assert.StartsWith("could not gzip-decode: ", ContentEncodings.Decode("gzip", [.. Encode("gzip", Page), .. junk], Max).Problem, StringComparison.Ordinal);
        Assert.Equal("could not br-decode: 4 bytes follow the end of the brotli stream", ContentEncodings.Decode("br", [.. Encode("br", Page), .. junk], Max).Problem);
    }

    [Fact]
    public void Every_member_of_a_gzip_body_is_decoded()
    {
        var decoded = ContentEncodings.Decode("gzip", [.. Encode("gzip", "first "u8.ToArray()), .. Encode("gzip", "second"u8.ToArray())], Max);

        Assert.Null(decoded.Problem);
        Assert.Equal("first second", Encoding.UTF8.GetString(decoded.Content));
    }

    [Theory]
    [InlineData("gzip", "could not gzip-decode: the data is not valid gzip")]
    [InlineData("deflate", "could not deflate-decode: the data is not valid deflate")]
    [InlineData("br", "could not br-decode: the data is not valid brotli")]
    public void Bytes_that_are_not_under_the_coding_are_left_raw_with_why(string coding, string problem)
    {
        var decoded = ContentEncodings.Decode(coding, Page, Max);

        Assert.Same(Page, decoded.Content);
        Assert.Equal(problem, decoded.Problem);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    public void A_bomb_is_cut_at_the_bound(string coding)
    {
        var bomb = Encode(coding, new byte[16 * Max]);
        Assert.True(bomb.Length < 256 * 1024, $"{coding} of 16 MiB of zeros is {bomb.Length} bytes");

        var decoded = ContentEncodings.Decode(coding, bomb, Max);

        Assert.True(decoded.Cut);
        Assert.Null(decoded.Problem);
        Assert.Equal(Max, decoded.Content.Length);
        Assert.DoesNotContain(decoded.Content, b => b != 0);
    }

    [Fact]
    public void Each_step_is_bounded_and_a_cut_one_hands_on_its_start()
    {
        // The first step undone (the outer gzip) already passes the bound: the next ones decode what they got, short.
        var inner = Encode("gzip", Encode("br", Page));
        var wire = Encode("gzip", inner);

        var decoded = ContentEncodings.Decode("br, gzip, gzip", wire, maxLength: inner.Length / 2);

        Assert.True(decoded.Cut);
        Assert.Null(decoded.Problem);
        Assert.NotEmpty(decoded.Content);
        Assert.Equal(Page[..decoded.Content.Length], decoded.Content);
    }

    [Fact]
    public void A_body_exactly_as_long_as_the_bound_is_not_cut()
    {
        var decoded = ContentEncodings.Decode("gzip", Encode("gzip", Page), Page.Length);

        Assert.False(decoded.Cut);
        Assert.Equal(Page, decoded.Content);
    }

    [Fact]
    public void DecodeOrRaw_keeps_the_raw_body_for_what_does_not_decode_and_does_not_throw()
    {
        // Garbage under br once escaped as BrotliStream's InvalidOperationException, out of every ~b filter.
        Assert.Same(Page, ContentEncodings.DecodeOrRaw("br", Page));
        Assert.Same(Page, ContentEncodings.DecodeOrRaw("zstd", Page));
        var bomb = Encode("gzip", new byte[ContentEncodings.MaxDecodedLength + 1]);
        Assert.Same(bomb, ContentEncodings.DecodeOrRaw("gzip", bomb));
        Assert.Equal(Page, ContentEncodings.DecodeOrRaw("gzip, br", Encode("br", Encode("gzip", Page))));

        // Still lenient about a missing end, for searching what there is of a cut body.
        var whole = Encode("gzip", Page);
        var start = ContentEncodings.DecodeOrRaw("gzip", whole[..(whole.Length / 2)]);
        Assert.Equal(Page[..start.Length], start);
    }

    private static byte[] Encode(string coding, byte[] data) => coding switch
    {
        "gzip" or "x-gzip" => Compress(data, static s => new GZipStream(s, CompressionLevel.Optimal, leaveOpen: true)),
        "deflate" => Compress(data, static s => new ZLibStream(s, CompressionLevel.Optimal, leaveOpen: true)),
        "br" => Compress(data, static s => new BrotliStream(s, CompressionLevel.Optimal, leaveOpen: true)),
        _ => throw new ArgumentOutOfRangeException(nameof(coding)),
    };

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
