using System.IO.Compression;
using System.Text;
using AngleSharp.Dom;
using WsWeb.Api;
using WsWeb.Components.Shared;
using WsWeb.Core.Flows;
using WsWeb.Dashboard;
using static WsWeb.Tests.Dashboard.ComponentRenderer;

using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Dashboard;

/// <summary>An HTTP body's view: decoded as mitmweb shows it, with the recorded bytes still there, and why when it cannot be.</summary>
public sealed class HttpBodyComponentTests
{
    private static readonly byte[] Page = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 100).Select(i => $"<li>item {i}</li>\n")));

    [Fact]
    public async Task A_gzip_response_shows_decoded_text_says_so_and_keeps_the_recorded_bytes_under_as_recorded()
    {
        var wire = Gzip(Page);

        var body = await RenderBodyAsync(wire, "gzip");

        Assert.Equal(Encoding.UTF8.GetString(Page), body.QuerySelector("pre.payload-text")!.TextContent);
        Assert.Equal($"gzip-decoded, {Fmt.Bytes(wire.Length)} → {Fmt.Bytes(Page.Length)}", body.QuerySelector(".http-body-decoded")!.TextContent);
        Assert.Contains(", text", body.TextContent, StringComparison.Ordinal);
        Assert.Null(body.QuerySelector(".http-body-problem"));
        var raw = body.QuerySelector("details.http-body-raw")!;
        Assert.False(raw.HasAttribute("open"));
        Assert.Contains("Content-Encoding: gzip", raw.QuerySelector("summary")!.TextContent, StringComparison.Ordinal);
        Assert.StartsWith("00000000  1f 8b", raw.QuerySelector("pre.payload-hex")!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_json_body_is_pretty_printed_as_a_message_is_and_a_cut_one_stays_text()
    {
        var json = """{"user":{"id":7,"name":"alice"},"ok":true}"""u8.ToArray();

        var whole = await RenderBodyAsync(Gzip(json), "gzip");
        Assert.Contains("\"name\": \"alice\"", whole.QuerySelector("pre.payload-json")!.TextContent, StringComparison.Ordinal);
        Assert.EndsWith(", JSON", whole.QuerySelector(".small")!.TextContent.Trim(), StringComparison.Ordinal);

        var cut = await RenderBodyAsync(json[..20], null, length: json.Length, truncated: true);
        Assert.Null(cut.QuerySelector("pre.payload-json"));
        Assert.NotNull(cut.QuerySelector("pre.payload-text"));
    }

    [Fact]
    public async Task A_body_under_two_codings_names_both()
    {
        var body = await RenderBodyAsync(Brotli(Gzip(Page)), "gzip, br");

        Assert.StartsWith("gzip+br-decoded, ", body.QuerySelector(".http-body-decoded")!.TextContent, StringComparison.Ordinal);
        Assert.Equal(Encoding.UTF8.GetString(Page), body.QuerySelector("pre.payload-text")!.TextContent);
    }

    [Fact]
    public async Task A_body_without_a_coding_or_under_identity_is_shown_as_before()
    {
        foreach (var coding in new[] { null, "identity" })
        {
            var body = await RenderBodyAsync(Page, coding);

            Assert.Equal(Encoding.UTF8.GetString(Page), body.QuerySelector("pre.payload-text")!.TextContent);
            Assert.Null(body.QuerySelector(".http-body-decoded"));
            Assert.Null(body.QuerySelector("details"));
            Assert.Null(body.QuerySelector(".http-body-problem"));
        }
    }

    [Fact]
    public async Task A_gzip_body_cut_short_shows_the_recorded_bytes_with_why()
    {
        var wire = Gzip(Page)[..^6];

        var body = await RenderBodyAsync(wire, "gzip");

        Assert.Equal(
            "could not gzip-decode: the gzip stream is cut short or corrupt (its trailer does not match the data); shown as recorded.",
            body.QuerySelector(".http-body-problem")!.TextContent);
        Assert.StartsWith("00000000  1f 8b", body.QuerySelector("pre.payload-hex")!.TextContent, StringComparison.Ordinal);
        Assert.Null(body.QuerySelector(".http-body-decoded"));
        Assert.Null(body.QuerySelector("details"));
    }

    [Fact]
    public async Task An_unknown_coding_shows_the_recorded_bytes_with_why()
    {
        var body = await RenderBodyAsync([0x28, 0xb5, 0x2f, 0xfd, 0x00], "zstd");

        Assert.Equal("could not zstd-decode: WsWeb does not know the zstd encoding; shown as recorded.", body.QuerySelector(".http-body-problem")!.TextContent);
        Assert.Contains("28 b5 2f fd 00", body.QuerySelector("pre.payload-hex")!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bomb_is_decoded_only_up_to_the_bound_and_says_so()
    {
        var text = new byte[Fmt.MaxDecodedBytes * 4];
        text.AsSpan().Fill((byte)'a');

        var body = await RenderBodyAsync(Gzip(text), "gzip");

        Assert.EndsWith("→ more than 4 MiB", body.QuerySelector(".http-body-decoded")!.TextContent, StringComparison.Ordinal);
        Assert.Equal(Fmt.MaxViewBytes, body.QuerySelector("pre.payload-text")!.TextContent.Length);
        Assert.Contains("Showing the first 256 KiB of 4 MiB; decoding stops there, and the body holds more.", body.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_recorded_start_of_a_long_gzip_body_decodes_as_far_as_it_goes()
    {
        var wire = Gzip(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 20_000).Select(i => $"{i:x8} é\n"))));
        var recorded = wire[..(wire.Length / 2)];

        var body = await RenderBodyAsync(recorded, "gzip", length: wire.Length, truncated: true);

        Assert.Null(body.QuerySelector(".http-body-problem"));
        Assert.StartsWith("00000000 é\n00000001 é\n", body.QuerySelector("pre.payload-text")!.TextContent, StringComparison.Ordinal);
        Assert.Contains($"only the first {Fmt.Bytes(recorded.Length)} of {Fmt.Bytes(wire.Length)} were recorded", body.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_exchange_hands_every_content_encoding_field_to_the_body_and_says_a_pending_body_is_not_yet_recorded()
    {
        var upload = Gzip(Page);
        var flow = new HttpFlow(
            new HttpRequestData { Method = "POST", Scheme = "http", Host = "api.example", Port = 80, Path = "/upload", Headers = [new("Content-Encoding", "gzip")], Content = upload, ContentLength = upload.Length },
            TestData.Start)
        {
            IsLive = true,
            Response = new HttpResponseData { StatusCode = 200, Headers = [new("Content-Encoding", "gzip"), new("Content-Encoding", "br")] },
        };
        var doc = await RenderAsync<HttpExchange>(new() { ["Flow"] = flow, ["Detail"] = FlowDetail.From(flow) });
        Assert.Equal(Encoding.UTF8.GetString(Page), doc.QuerySelector("#http-request-body pre.payload-text")!.TextContent);
        Assert.Equal("Not recorded yet: bodies are, once they have gone through.", doc.QuerySelector("#http-response-body")!.TextContent.Trim());

        flow.Response.Content = Brotli(Gzip(Page));
        flow.Response.ContentLength = flow.Response.Content.Length;
        doc = await RenderAsync<HttpExchange>(new() { ["Flow"] = flow, ["Detail"] = FlowDetail.From(flow) });
        Assert.StartsWith("gzip+br-decoded", doc.QuerySelector("#http-response-body .http-body-decoded")!.TextContent, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0x61, 0xc3 }, true, true)]                    // a 2-byte character split by the cut
    [InlineData(new byte[] { 0x61, 0xe2, 0x82 }, true, true)]              // a 3-byte one
    [InlineData(new byte[] { 0x61, 0xc3 }, false, false)]                  // the same, but nothing was cut
    [InlineData(new byte[] { 0x61, 0xff }, true, false)]                   // not UTF-8, cut or not
    [InlineData(new byte[] { 0xff, 0x61, 0xc3 }, true, false)]             // invalid before the split one
    [InlineData(new byte[] { 0x61, 0xc3, 0xa9 }, false, true)]
    public void Text_is_told_from_binary_and_a_character_split_by_a_cut_does_not_make_it_binary(byte[] bytes, bool cut, bool text) =>
        Assert.Equal(text, Fmt.IsUtf8(bytes, cut));

    private static async Task<IElement> RenderBodyAsync(byte[] content, string? coding, long? length = null, bool truncated = false)
    {
        var doc = await RenderAsync<HttpBody>(new()
        {
            ["Id"] = "body",
            ["Content"] = content,
            ["Length"] = length ?? content.Length,
            ["Truncated"] = truncated,
            ["ContentEncoding"] = coding,
        });
        return doc.QuerySelector("#body")!;
    }

    private static byte[] Gzip(byte[] data) => Compression.Gzip(data, CompressionLevel.Optimal);

    private static byte[] Brotli(byte[] data) => Compression.Brotli(data);
}
