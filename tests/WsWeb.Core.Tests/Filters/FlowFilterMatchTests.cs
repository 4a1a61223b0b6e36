using System.Text.RegularExpressions;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;

namespace WsWeb.Core.Tests.Filters;

/// <summary>Flow-level operators, combinators, quoting and case rules on plain HTTP flows.</summary>
public class FlowFilterMatchTests
{
    private static bool Http(string expression) => FlowFilter.Parse(expression).Matches(TestFlows.Http());

    private static bool Pending(string expression) => FlowFilter.Parse(expression).Matches(TestFlows.Pending());

    [Theory]
    // ~all, ~http, the flow kinds we never carry
    [InlineData("~all", true)]
    [InlineData("~http", true)]
    [InlineData("~tcp", false)]
    [InlineData("~dns", false)]
    [InlineData("~websocket", false)]
    // response state, error, mark
    [InlineData("~s", true)]
    [InlineData("~q", false)]
    [InlineData("~e", false)]
    [InlineData("~marked", false)]
    [InlineData("~c 200", true)]
    [InlineData("~c 404", false)]
    [InlineData("~c 0200", true)]
    // URL: composed as https://example.com/api/Users?id=7 (default port left out)
    [InlineData("~u example.com/api", true)]
    [InlineData("~u ^https://example\\.com/api/Users\\?id=7$", true)]
    [InlineData("~u :443", false)]
    [InlineData("~u nothere", false)]
    [InlineData("Users", true)]
    [InlineData("\"id=7\"", true)]
    [InlineData("'id=8'", false)]
    // domain, method, addresses
    [InlineData("~d ^example\\.com$", true)]
    [InlineData("~d other", false)]
    [InlineData("~m GET", true)]
    [InlineData("~m ^POST$", false)]
    [InlineData("~src ^127\\.0\\.0\\.1:51000$", true)]
    [InlineData("~src 10\\.", false)]
    [InlineData("~dst example.com:443", true)]
    [InlineData("~dst :80$", false)]
    // headers as "name: value" lines, names as sent
    [InlineData("~h \"User-Agent: Mozilla\"", true)]
    [InlineData("~hq \"^Host: example\\.com$\"", true)]
    [InlineData("~hq Server", false)]
    [InlineData("~hs \"^Server: nginx$\"", true)]
    [InlineData("~hs User-Agent", false)]
    [InlineData("~h ^Server", true)]
    [InlineData("~h \"X-Note: two words$\"", true)]
    [InlineData("~h 'Mozilla/5.0\\nContent-Type'", true)]
    // content type
    [InlineData("~t json", true)]
    [InlineData("~t html", true)]
    [InlineData("~tq json", true)]
    [InlineData("~tq html", false)]
    [InlineData("~ts ^text/html", true)]
    [InlineData("~ts json", false)]
    [InlineData("~a", false)]
    // bodies
    [InlineData("~b Alice", true)]
    [InlineData("~b Hello", true)]
    [InlineData("~bq Alice", true)]
    [InlineData("~bq Hello", false)]
    [InlineData("~bs Hello", true)]
    [InlineData("~bs Alice", false)]
    [InlineData("~b World.second", true)]
    [InlineData("~b ^second", false)]
    [InlineData("~b \"(?m)^second\"", true)]
    // message operators on a flow without messages are false
    [InlineData("~wq", false)]
    [InlineData("~text", false)]
    [InlineData("~size >=0", false)]
    [InlineData("~json $", false)]
    public void Operators_on_an_http_flow(string expression, bool expected) => Assert.Equal(expected, Http(expression));

    [Theory]
    [InlineData("~q", true)]
    [InlineData("~s", false)]
    [InlineData("~c 200", false)]
    [InlineData("~e", true)]
    [InlineData("~marked", true)]
    [InlineData("~marker star", true)]
    [InlineData("~marker heart", false)]
    [InlineData("~u ^http://api\\.local:8080/upload$", true)]
    [InlineData("~d ^api\\.local$", true)]
    [InlineData("~m post", true)]
    [InlineData("~hs .", false)]
    [InlineData("~bs .", false)]
    [InlineData("~src .", false)]
    [InlineData("~b \\x89PNG", true)]
    [InlineData("~b ^\\x89\\x50", true)]
    [InlineData("~t image", true)]
    [InlineData("~a", false)]
    public void Operators_on_a_pending_flow(string expression, bool expected) => Assert.Equal(expected, Pending(expression));

    [Theory]
    // mitmproxy ≥ 10.2: ~u (and bare values), ~d and ~m ignore case; everything else is case-sensitive.
    [InlineData("~u EXAMPLE.COM/API/users", true)]
    [InlineData("EXAMPLE", true)]
    [InlineData("~d EXAMPLE.com", true)]
    [InlineData("~m get", true)]
    [InlineData("~h \"user-agent: mozilla\"", false)]
    [InlineData("~h \"User-Agent: Mozilla\"", true)]
    [InlineData("~b hello", false)]
    [InlineData("~b Hello", true)]
    [InlineData("~b alice", false)]
    [InlineData("~t JSON", false)]
    [InlineData("~dst EXAMPLE", false)]
    // inline flags switch it per pattern
    [InlineData("~b \"(?i)hello\"", true)]
    [InlineData("~u '(?-i)EXAMPLE'", false)]
    public void Case_rules_follow_mitmproxy(string expression, bool expected) => Assert.Equal(expected, Http(expression));

    [Theory]
    // On the HTTP flow: ~s true, ~q false, ~e false, ~all true.
    [InlineData("!~q", true)]
    [InlineData("! ~q", true)]
    [InlineData("!!~q", false)]
    [InlineData("!~q & ~s", true)]
    [InlineData("!(~q | ~s)", false)]
    [InlineData("!~s | ~all", true)]
    [InlineData("~s & ~q", false)]
    [InlineData("~s & ~all & ~c 200", true)]
    [InlineData("~q | ~e | ~s", true)]
    [InlineData("~q | ~e", false)]
    // & binds tighter than |
    [InlineData("~s | ~q & ~e", true)]
    [InlineData("(~s | ~q) & ~e", false)]
    [InlineData("~e & ~q | ~s", true)]
    // adjacent terms are an "and" looser than | (mitmproxy: "~s | ~q ~e" is "(~s | ~q) & ~e")
    [InlineData("~s | ~q ~e", false)]
    [InlineData("~s ~q | ~all", true)]
    [InlineData("~e ~s | ~all", false)]
    [InlineData("~s ~c 200", true)]
    [InlineData("~s ~c 201", false)]
    [InlineData("(~s ~c 200) | ~e", true)]
    // operators need no spaces around & | ! ( )
    [InlineData("(~s)&(~c 200)", true)]
    [InlineData("~q|~s", true)]
    [InlineData("~s!~q", true)]
    [InlineData("~s&!~e&~m GET", true)]
    [InlineData("( ( ~s ) )", true)]
    public void Combinators_and_precedence(string expression, bool expected) => Assert.Equal(expected, Http(expression));

    [Theory]
    // In an unquoted value & | ! are part of the regex (as in mitmproxy); whitespace ( ) ~ " ' end it.
    [InlineData("~u Users|nothere", true)]
    [InlineData("~u nothere|alsonot", false)]
    [InlineData("~b Alice&", false)]
    [InlineData("~h Server:\\snginx", true)]
    [InlineData("~b \"say \\\"hi\\\"\"", true)]
    [InlineData("~b 'say \"hi\"'", true)]
    [InlineData("~b 'it\\'s'", true)]
    [InlineData("~b \"it's\"", true)]
    [InlineData("~h \"X-Note: two words\"", true)]
    [InlineData("~h 'X-Note: two\\sw'", true)]
    // a backslash escapes only the quote and itself; regex escapes survive either way
    [InlineData("~u \"Users\\?id=\\d\"", true)]
    [InlineData("~u \"Users\\\\?id=\\\\d\"", true)]
    [InlineData("~u \"id=\\D\"", false)]
    [InlineData("~u \"\"", true)]
    [InlineData("~u example \"api/Users\"", true)]
    [InlineData("~u example\"nothere\"", false)]
    public void Values_quoting_and_escaping(string expression, bool expected) => Assert.Equal(expected, Http(expression));

    [Theory]
    [InlineData("https", "example.com", 443, "/")]
    [InlineData("https", "example.com", 8443, "/a?b=c")]
    [InlineData("http", "example.com", 80, "/x")]
    [InlineData("http", "example.com", 443, "/x")]
    [InlineData("http", "::1", 8080, "/v6")]
    [InlineData("https", "[::1]", 443, "/v6")]
    [InlineData("https", "host", 0, "")]
    public void Url_operator_sees_exactly_the_model_url(string scheme, string host, int port, string path)
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = scheme, Host = host, Port = port, Path = path }, 0);
        var filter = FlowFilter.Parse($"~u \"^{Regex.Escape(flow.Request.Url)}$\"");
        Assert.True(filter.Matches(flow), flow.Request.Url);
    }

    [Theory]
    [InlineData("~live", true, false, true)]
    [InlineData("~live", false, false, false)]
    [InlineData("~imported", false, true, true)]
    [InlineData("~imported", false, false, false)]
    [InlineData("~websocket & ~live", true, false, true)]
    [InlineData("!~imported", false, true, false)]
    public void Live_and_imported_tell_flows_being_relayed_from_flows_read_from_a_file(string expression, bool live, bool imported, bool expected)
    {
        var captured = TestFlows.WebSocket();
        var flow = new HttpFlow(captured.Request, captured.TimestampCreated)
        {
            IsImported = imported,
            Response = captured.Response,
            WebSocket = captured.WebSocket,
            IsLive = live,
        };

        Assert.Equal(expected, FlowFilter.Parse(expression).Matches(flow));
    }

    [Theory]
    [InlineData("~replay", "request", true)]
    [InlineData("~replay", "response", true)]
    [InlineData("~replay", null, false)]
    [InlineData("~replayq", "request", true)]
    [InlineData("~replayq", "response", false)]
    [InlineData("~replayq", null, false)]
    [InlineData("~replays", "response", true)]
    [InlineData("~replays", "request", false)]
    [InlineData("~replays", null, false)]
    [InlineData("~websocket & ~replayq", "request", true)]
    [InlineData("!~replay", null, true)]
    [InlineData("!~replay", "request", false)]
    public void Replay_operators_tell_replayed_requests_from_replayed_responses_as_mitmproxy(string expression, string? isReplay, bool expected)
    {
        var captured = TestFlows.WebSocket();
        var flow = new HttpFlow(captured.Request, captured.TimestampCreated)
        {
            IsReplay = isReplay,
            Response = captured.Response,
            WebSocket = captured.WebSocket,
        };

        Assert.Equal(expected, FlowFilter.Parse(expression).Matches(flow));
    }

    [Fact]
    public void Domain_also_matches_the_host_header_without_port()
    {
        var flow = new HttpFlow(
            new HttpRequestData { Method = "GET", Scheme = "http", Host = "10.0.0.1", Port = 80, Path = "/", Headers = [new("Host", "Service.Internal:8080")] },
            0);
        Assert.True(FlowFilter.Parse("~d ^service\\.internal$").Matches(flow));
        Assert.True(FlowFilter.Parse("~d ^10\\.0\\.0\\.1$").Matches(flow));
        Assert.False(FlowFilter.Parse("~d 8080").Matches(flow));
    }

    [Fact]
    public void Asset_matches_scripts_styles_images_and_fonts()
    {
        foreach (var (type, expected) in new[] { ("application/javascript", true), ("text/css", true), ("image/webp", true), ("font/woff2", true), ("text/html", false) })
        {
            var flow = TestFlows.Http();
            flow.Response = new HttpResponseData { StatusCode = 200, Headers = [new("content-type", type)] };
            Assert.Equal(expected, FlowFilter.Parse("~a").Matches(flow));
        }
    }

    [Fact]
    public void Large_bodies_and_header_blocks_use_pooled_buffers()
    {
        var flow = TestFlows.Http();
        var big = new string('x', 100_000);
        flow.Request.Content = System.Text.Encoding.UTF8.GetBytes(big + "needle");
        flow.Request.Headers.Add("X-Big", big);
        Assert.True(FlowFilter.Parse("~bq needle$").Matches(flow));
        Assert.True(FlowFilter.Parse("~hq \"^X-Big: x+$\"").Matches(flow));
        Assert.True(FlowFilter.Parse("~hq \"^X-Note: two words$\"").Matches(flow));
    }

    [Fact]
    public void One_filter_serves_many_flows()
    {
        var filter = FlowFilter.Parse("~s & ~c 200 | ~e");
        HttpFlow[] flows = [TestFlows.Http(), TestFlows.Pending(), TestFlows.WebSocket()];
        Assert.Equal([true, true, false], flows.Select(filter.Matches));
    }

    // mitmproxy's ~u searches pretty_url: the Host header names host and port (its port, else the scheme's default).
    [Theory]
    [InlineData("http", "10.0.0.1", 80, "example.org", "http://example.org/p")]
    [InlineData("https", "example.com", 8443, "example.com", "https://example.com/p")]
    [InlineData("https", "example.com", 443, "example.com:8443", "https://example.com:8443/p")]
    [InlineData("http", "::1", 8080, "[::1]:8080", "http://[::1]:8080/p")]
    [InlineData("http", "example.com", 80, " ", "http://example.com/p")]
    public void Url_takes_host_and_port_from_the_host_header(string scheme, string host, int port, string hostHeader, string expected)
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = scheme, Host = host, Port = port, Path = "/p", Headers = [new("Host", hostHeader)] }, 0);
        Assert.True(FlowFilter.Parse($"~u \"^{Regex.Escape(expected)}$\"").Matches(flow), expected);
    }

    // mitmproxy's ~d searches host and pretty_host, which is parse_authority(Host header): no brackets, and a port
    // removed only when it is valid (checked against mitmproxy 8.1.1).
    [Theory]
    [InlineData("[::1]:8080", "~d ^::1$", true)]
    [InlineData("[::1]", "~d ^::1$", true)]
    [InlineData("[::1]:8080", "~d \\[", false)]
    [InlineData("example.org:8080", "~d ^example\\.org$", true)]
    [InlineData("example.org:99999", "~d 99999", true)]
    [InlineData("example.org:abc", "~d :abc$", true)]
    [InlineData("", "~d ^$", false)]
    public void Domain_takes_the_host_headers_host_as_mitmproxy_parses_it(string hostHeader, string expression, bool expected)
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "10.0.0.1", Port = 80, Path = "/", Headers = [new("Host", hostHeader)] }, 0);
        Assert.Equal(expected, FlowFilter.Parse(expression).Matches(flow));
    }

    [Fact]
    public void Source_and_destination_see_addresses_as_mitmproxy_writes_them_without_brackets()
    {
        var flow = TestFlows.Http();
        Assert.True(FlowFilter.Parse("~src ^127\\.0\\.0\\.1:51000$ & ~dst ^example\\.com:443$").Matches(flow));

        flow.ClientConn.PeerName = "[::1]:5000";
        flow.ServerConn.Address = "[2001:db8::1]:443";
        Assert.True(FlowFilter.Parse("~src ^::1:5000$").Matches(flow));
        Assert.True(FlowFilter.Parse("~dst ^2001:db8::1:443$").Matches(flow));
        Assert.False(FlowFilter.Parse("~src \\[ | ~dst \\]").Matches(flow));
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("x-gzip")]
    [InlineData("deflate")]
    [InlineData("deflate-raw")]
    [InlineData("br")]
    [InlineData("gzip, br")]
    [InlineData("identity")]
    public void Bodies_are_searched_with_their_content_encoding_undone(string coding)
    {
        var flow = TestFlows.Http();
        var body = "the secret word"u8.ToArray();
        flow.Response = new HttpResponseData
        {
            StatusCode = 200,
            Headers = [new("Content-Encoding", coding == "deflate-raw" ? "deflate" : coding)],
            Content = Encode(coding, body),
        };

        Assert.True(FlowFilter.Parse("~bs \"^the secret word$\"").Matches(flow));
        Assert.True(FlowFilter.Parse("~b secret").Matches(flow));
    }

    [Fact]
    public void A_body_that_does_not_decode_is_searched_as_it_came()
    {
        var flow = TestFlows.Http();
        flow.Response = new HttpResponseData { StatusCode = 200, Headers = [new("Content-Encoding", "gzip")], Content = "not gzip, but secret"u8.ToArray() };
        Assert.True(FlowFilter.Parse("~bs secret").Matches(flow));

        flow.Response.Headers[0] = new("Content-Encoding", "zstd");
        Assert.True(FlowFilter.Parse("~bs secret").Matches(flow));
    }

    [Fact]
    public void A_body_that_expands_without_bound_is_searched_in_its_first_4_MiB_decoded_at_that_cost()
    {
        // 256 MiB of zeros with a marker at the start and one past the bound: a gzip of about 256 KiB.
        var flow = TestFlows.Http();
        using (var compressed = new MemoryStream())
        {
            using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write("start-marker"u8);
                var zeros = new byte[1024 * 1024];
                for (var i = 0; i < 8; i++)
                {
                    gzip.Write(zeros);
                }

                gzip.Write("late-marker"u8);
                for (var i = 0; i < 248; i++)
                {
                    gzip.Write(zeros);
                }
            }

            flow.Response = new HttpResponseData { StatusCode = 200, Headers = [new("Content-Encoding", "gzip")], Content = compressed.ToArray() };
        }

        var start = FlowFilter.Parse("~bs start-marker");
        var late = FlowFilter.Parse("~bs late-marker");
        Assert.True(start.Matches(flow));   // warm-up as well
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(late.Matches(flow));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The bound and its buffers, not the 256 MiB a full decode would take (nor the 64 MiB export's bound).
        Assert.True(allocated < 32L * 1024 * 1024, $"one search allocated {allocated:N0} bytes");
    }

    [Fact]
    public void Empty_bodies_are_not_searched_and_an_empty_error_is_still_an_error()
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "h", Port = 80, Path = "/", Content = [] }, 0)
        {
            Response = new HttpResponseData { StatusCode = 204, Content = [] },
        };
        Assert.False(FlowFilter.Parse("~b ^$ | ~bq ^ | ~bs .*").Matches(flow));
        Assert.False(FlowFilter.Parse("~e").Matches(flow));

        // mitmproxy's flow.error is an object: present even with an empty message.
        flow.Error = "";
        Assert.True(FlowFilter.Parse("~e").Matches(flow));
    }

    private static byte[] Encode(string coding, byte[] body)
    {
        using var output = new MemoryStream();
        Stream Compressor(string one, Stream into) => one switch
        {
            "gzip" or "x-gzip" => new System.IO.Compression.GZipStream(into, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true),
            "deflate" => new System.IO.Compression.ZLibStream(into, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true),
            "deflate-raw" => new System.IO.Compression.DeflateStream(into, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true),
            "br" => new System.IO.Compression.BrotliStream(into, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true),
            _ => throw new ArgumentOutOfRangeException(nameof(coding)),
        };

        if (coding == "identity")
        {
            return body;
        }

        var data = body;
        foreach (var one in coding.Split(", "))
        {
            using var buffer = new MemoryStream();
            using (var compressor = Compressor(one, buffer))
            {
                compressor.Write(data);
            }

            data = buffer.ToArray();
        }

        return data;
    }
}
