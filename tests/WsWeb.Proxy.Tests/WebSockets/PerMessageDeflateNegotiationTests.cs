using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class PerMessageDeflateNegotiationTests
{
    private static readonly DeflateOffer Plain = new();

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(" , ,")]
    public void ParseOffers_NothingOffered_IsEmpty(string? header) =>
        Assert.Empty(PerMessageDeflateNegotiation.ParseOffers(header));

    [Fact]
    public void ParseOffers_BareExtension_IsDefaultOffer() =>
        Assert.Equal([Plain], PerMessageDeflateNegotiation.ParseOffers("permessage-deflate"));

    [Fact]
    public void ParseOffers_ChromeOffer_ValuelessClientMaxWindowBits()
    {
        var offer = Assert.Single(PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; client_max_window_bits"));
        Assert.Equal(new DeflateOffer(ClientMaxWindowBitsOffered: true), offer);
    }

    [Fact]
    public void ParseOffers_AllParameters()
    {
        var offer = Assert.Single(PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"));
        Assert.Equal(new DeflateOffer(true, true, 10, true, 12), offer);
    }

    [Fact]
    public void ParseOffers_Rfc7692Section713_FallbackOffers_InOrder()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits");
        Assert.Equal(
            [new DeflateOffer(ServerMaxWindowBits: 10, ClientMaxWindowBitsOffered: true), new DeflateOffer(ClientMaxWindowBitsOffered: true)],
            offers);
    }

    [Theory]
    [InlineData("x-webkit-deflate-frame, permessage-deflate")]
    [InlineData("permessage-deflate, x-webkit-deflate-frame; no_context_takeover")]
    [InlineData("foo; bar=\"a,b\", permessage-deflate")]
    [InlineData(",, permessage-deflate ,")]
    [InlineData("PerMessage-Deflate")]
    [InlineData("permessage-deflate;\tserver_max_window_bits=\"15\"")]
    [InlineData("garbage;;, permessage-deflate")]
    [InlineData("permessage-deflate; server_max_window_bits=7, permessage-deflate")]
    public void ParseOffers_KeepsOnlyValidDeflateOffers(string header)
    {
        var offer = Assert.Single(PerMessageDeflateNegotiation.ParseOffers(header));
        Assert.False(offer.ServerNoContextTakeover);
        Assert.False(offer.ClientMaxWindowBitsOffered);
    }

    [Fact]
    public void ParseOffers_QuotedValue_IsUnescaped()
    {
        var offer = Assert.Single(PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; server_max_window_bits=\"1\\0\""));
        Assert.Equal(10, offer.ServerMaxWindowBits);
    }

    [Theory]
    [InlineData("permessage-deflate; server_max_window_bits")]
    [InlineData("permessage-deflate; server_max_window_bits=7")]
    [InlineData("permessage-deflate; server_max_window_bits=16")]
    [InlineData("permessage-deflate; server_max_window_bits=08")]
    [InlineData("permessage-deflate; server_max_window_bits=+9")]
    [InlineData("permessage-deflate; server_max_window_bits=abc")]
    [InlineData("permessage-deflate; client_max_window_bits=0")]
    [InlineData("permessage-deflate; client_max_window_bits=\"\"")]
    [InlineData("permessage-deflate; server_no_context_takeover=1")]
    [InlineData("permessage-deflate; client_no_context_takeover=true")]
    [InlineData("permessage-deflate; server_no_context_takeover; server_no_context_takeover")]
    [InlineData("permessage-deflate; client_max_window_bits; client_max_window_bits=10")]
    [InlineData("permessage-deflate; foo")]
    [InlineData("permessage-deflate; foo=1")]
    [InlineData("permessage-deflate;")]
    [InlineData("permessage-deflate; =10")]
    [InlineData("permessage-deflate server_no_context_takeover")]
    [InlineData("permessage-deflate; server_max_window_bits=\"10")]
    [InlineData("permessage-deflate; server_max_window_bits=\"1 0\"")]
    [InlineData("; server_no_context_takeover")]
    [InlineData("permessage-deflate/1")]
    public void ParseOffers_InvalidOffer_IsDropped(string header) =>
        Assert.Empty(PerMessageDeflateNegotiation.ParseOffers(header));

    [Fact]
    public void BuildUpstreamOffer_NoOffers_IsNull() =>
        Assert.Null(PerMessageDeflateNegotiation.BuildUpstreamOffer([]));

    [Fact]
    public void BuildUpstreamOffer_DropsClientMaxWindowBits_KeepsTheRest()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; client_no_context_takeover; server_no_context_takeover");
        Assert.Equal(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
            PerMessageDeflateNegotiation.BuildUpstreamOffer(offers));
    }

    [Fact]
    public void BuildUpstreamOffer_StripsUnknownExtensions_AndDeduplicates()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers(
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits, permessage-deflate");
        Assert.Equal(
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
            PerMessageDeflateNegotiation.BuildUpstreamOffer(offers));
    }

    [Fact]
    public void BuildUpstreamOffer_ParsesBackToTheSanitizedOffers()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits, permessage-deflate; client_no_context_takeover");
        var upstream = PerMessageDeflateNegotiation.BuildUpstreamOffer(offers);
        Assert.Equal(
            [new DeflateOffer(ServerNoContextTakeover: true, ServerMaxWindowBits: 9), new DeflateOffer(ClientNoContextTakeover: true)],
            PerMessageDeflateNegotiation.ParseOffers(upstream));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" ")]
    public void TryParseResponse_NoExtension_MeansNoCompression(string? header)
    {
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse(header, [Plain], out var accepted, out var error));
        Assert.Null(accepted);
        Assert.Null(error);
    }

    [Fact]
    public void TryParseResponse_Bare_IsDefault()
    {
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate", [Plain], out var accepted, out _));
        Assert.Equal(DeflateParameters.Default, accepted);
    }

    [Fact]
    public void TryParseResponse_ServerMayAddContextFlagsAndASmallerWindowUnasked()
    {
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9",
            [Plain],
            out var accepted,
            out var error), error);
        Assert.Equal(new DeflateParameters(true, true, 9, 15), accepted);
    }

    [Fact]
    public void TryParseResponse_ServerWindowNotAboveTheOffer()
    {
        DeflateOffer[] sent = [new(ServerMaxWindowBits: 12)];
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; server_max_window_bits=12", sent, out var same, out _));
        Assert.Equal(12, same!.Value.ServerMaxWindowBits);
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; server_max_window_bits=8", sent, out var smaller, out _));
        Assert.Equal(8, smaller!.Value.ServerMaxWindowBits);
        Assert.False(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; server_max_window_bits=13", sent, out var larger, out var error));
        Assert.Null(larger);
        Assert.Contains("matches none", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParseResponse_MayAnswerTheFallbackOffer()
    {
        DeflateOffer[] sent = [new(ServerMaxWindowBits: 10), Plain];
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; server_max_window_bits=14", sent, out var accepted, out _));
        Assert.Equal(14, accepted!.Value.ServerMaxWindowBits);
    }

    [Fact]
    public void TryParseResponse_ClientMaxWindowBitsAccepted_WhenOffered()
    {
        // We never offer it upstream, but the parser follows the RFC for whatever offers it is given.
        DeflateOffer[] sent = [new(ClientMaxWindowBitsOffered: true)];
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; client_max_window_bits=10", sent, out var accepted, out _));
        Assert.Equal(10, accepted!.Value.ClientMaxWindowBits);
    }

    [Theory]
    [InlineData("permessage-deflate; client_max_window_bits=10", "client_max_window_bits")]
    [InlineData("permessage-deflate; client_max_window_bits", "client_max_window_bits")]
    [InlineData("x-webkit-deflate-frame", "not offered")]
    [InlineData("permessage-deflate, permessage-deflate", "more than once")]
    [InlineData("permessage-deflate; foo", "Unknown")]
    [InlineData("permessage-deflate; server_no_context_takeover; server_no_context_takeover", "more than once")]
    [InlineData("permessage-deflate; server_max_window_bits", "server_max_window_bits")]
    [InlineData("permessage-deflate; server_max_window_bits=16", "server_max_window_bits")]
    [InlineData("permessage-deflate; client_no_context_takeover=1", "no value")]
    [InlineData("permessage-deflate;; server_no_context_takeover", "Malformed")]
    [InlineData("permessage-deflate x", "Malformed")]
    [InlineData("permessage-deflate; server_max_window_bits=\"10", "Malformed")]
    [InlineData("permessage-deflate; server_max_window_bits=\"1\\", "Malformed")]
    [InlineData("permessage-deflate; server_max_window_bits=\"10\\\", permessage-deflate", "Malformed")]
    public void TryParseResponse_Invalid_IsRejectedWithAReason(string header, string reason)
    {
        Assert.False(PerMessageDeflateNegotiation.TryParseResponse(header, [Plain], out var accepted, out var error));
        Assert.Null(accepted);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParseResponse_DeflateNotOffered_IsRejected()
    {
        Assert.False(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate", [], out _, out var error));
        Assert.Contains("not offered", error, StringComparison.Ordinal);
    }

    [Fact]
    public void SelectClientResponse_ServerDeclined_ClientLegUncompressed() =>
        Assert.Null(PerMessageDeflateNegotiation.SelectClientResponse([Plain], null));

    [Fact]
    public void SelectClientResponse_NoClientOffers_IsNull() =>
        Assert.Null(PerMessageDeflateNegotiation.SelectClientResponse([], DeflateParameters.Default));

    [Fact]
    public void SelectClientResponse_Plain()
    {
        var response = PerMessageDeflateNegotiation.SelectClientResponse([Plain], DeflateParameters.Default);
        Assert.Equal(new DeflateResponse(DeflateParameters.Default, "permessage-deflate"), response);
    }

    [Fact]
    public void SelectClientResponse_SkipsOffersDemandingASmallerServerWindow()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits");
        var response = PerMessageDeflateNegotiation.SelectClientResponse(offers, DeflateParameters.Default);
        Assert.Equal("permessage-deflate", response!.Value.HeaderValue);
        Assert.Equal(DeflateParameters.Default, response.Value.Parameters);
    }

    [Fact]
    public void SelectClientResponse_OnlySmallWindowOffers_Declines()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=14");
        Assert.Null(PerMessageDeflateNegotiation.SelectClientResponse(offers, DeflateParameters.Default));
    }

    [Fact]
    public void SelectClientResponse_OfferedServerWindow15_IsAnswered()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; server_max_window_bits=15");
        var response = PerMessageDeflateNegotiation.SelectClientResponse(offers, DeflateParameters.Default);
        Assert.Equal("permessage-deflate; server_max_window_bits=15", response!.Value.HeaderValue);
    }

    [Fact]
    public void SelectClientResponse_GrantsClientRequests_AndMirrorsServerFlags()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; server_no_context_takeover; client_max_window_bits=11");
        var upstream = new DeflateParameters(false, true, 12, 15);
        var response = PerMessageDeflateNegotiation.SelectClientResponse(offers, upstream);
        Assert.Equal(new DeflateParameters(true, true, 15, 11), response!.Value.Parameters);

        // client_max_window_bits is not answered: our inflater copes with any window the client uses.
        Assert.Equal("permessage-deflate; server_no_context_takeover; client_no_context_takeover", response.Value.HeaderValue);
    }

    [Fact]
    public void SelectClientResponse_HeaderParsesAsAResponseToTheClientsOffer()
    {
        var offers = PerMessageDeflateNegotiation.ParseOffers("permessage-deflate; server_max_window_bits=15; client_max_window_bits");
        var response = PerMessageDeflateNegotiation.SelectClientResponse(offers, new DeflateParameters(true, false, 15, 15))!.Value;
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse(response.HeaderValue, offers, out var asClientSeesIt, out var error), error);
        Assert.Equal(response.Parameters with { ClientMaxWindowBits = 15 }, asClientSeesIt);
    }

    [Fact]
    public void EndToEnd_ClientOffer_Upstream_ServerResponse_ClientResponse()
    {
        var clientOffers = PerMessageDeflateNegotiation.ParseOffers(
            "permessage-deflate; client_max_window_bits, x-foo; bar, permessage-deflate; server_max_window_bits=9");
        var upstream = PerMessageDeflateNegotiation.BuildUpstreamOffer(clientOffers);
        Assert.Equal("permessage-deflate, permessage-deflate; server_max_window_bits=9", upstream);

        var sent = PerMessageDeflateNegotiation.ParseOffers(upstream);
        Assert.True(PerMessageDeflateNegotiation.TryParseResponse("permessage-deflate; client_no_context_takeover", sent, out var serverLeg, out var error), error);
        Assert.Equal(new DeflateParameters(false, true, 15, 15), serverLeg);

        var clientLeg = PerMessageDeflateNegotiation.SelectClientResponse(clientOffers, serverLeg);
        Assert.Equal(new DeflateResponse(new DeflateParameters(false, true, 15, 15), "permessage-deflate; client_no_context_takeover"), clientLeg);
    }

    [Fact]
    public void DeflateOffer_ToString_ListsParametersInRfcOrder()
    {
        Assert.Equal("permessage-deflate", Plain.ToString());
        Assert.Equal(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
            new DeflateOffer(true, true, 10, true, 9).ToString());
        Assert.Equal("permessage-deflate; client_max_window_bits", new DeflateOffer(ClientMaxWindowBitsOffered: true).ToString());
    }

    [Fact]
    public void Parameters_CreateDeflater_UsesTheSendersContextRule()
    {
        // On the client leg we are the server: server_no_context_takeover governs our compressor.
        var parameters = new DeflateParameters(ServerNoContextTakeover: true, ClientNoContextTakeover: false, 15, 15);
        var (reset1, reset2) = CompressTwice(parameters.CreateDeflater(asServer: true));
        Assert.Equal(reset1, reset2);

        // On the upstream leg we are the client, and the client keeps its context here.
        var (first, second) = CompressTwice(parameters.CreateDeflater(asServer: false));
        Assert.True(second.Length < first.Length);

        static (byte[] First, byte[] Second) CompressTwice(MessageDeflater deflater)
        {
            using (deflater)
            {
                var a = new System.Buffers.ArrayBufferWriter<byte>();
                var b = new System.Buffers.ArrayBufferWriter<byte>();
                deflater.Compress("Hello, Hello, Hello"u8, a);
                deflater.Compress("Hello, Hello, Hello"u8, b);
                return (a.WrittenSpan.ToArray(), b.WrittenSpan.ToArray());
            }
        }
    }
}
