using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

/// <summary>The HAR 1.2 fields other tools read: response cookies, timings, form bodies given as params.</summary>
public class HarDetailsTests
{
    private const double T0 = 1_700_000_000;

    private static HttpFlow Get(ConnectionInfo server, params KeyValuePair<string, string>[] responseHeaders)
    {
        var flow = new HttpFlow(
            new HttpRequestData { Method = "GET", Scheme = "https", Host = "site.example", Port = 443, Path = "/", Content = [], TimestampStart = T0, TimestampEnd = T0 + 0.100 },
            T0)
        {
            ServerConn = server,
        };
        flow.Response = new HttpResponseData { StatusCode = 200, Reason = "OK", Headers = [.. responseHeaders], Content = [], TimestampStart = T0 + 0.150, TimestampEnd = T0 + 0.160 };
        return flow;
    }

    private static JsonElement Entry(HttpFlow flow) =>
        JsonDocument.Parse(RoundTripTests.Export([flow], FlowFormat.Har)).RootElement.GetProperty("log").GetProperty("entries")[0];

    [Fact]
    public void Set_cookie_headers_become_the_responses_cookies_with_their_attributes()
    {
        var entry = Entry(Get(
            new ConnectionInfo(),
            new("Set-Cookie", "session=abc123; Path=/app; Domain=site.example; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly; Secure; SameSite=Lax"),
            new("Set-Cookie", "theme=dark")));

        var cookies = entry.GetProperty("response").GetProperty("cookies").EnumerateArray().ToList();
        Assert.Equal(2, cookies.Count);
        Assert.Equal("session", cookies[0].GetProperty("name").GetString());
        Assert.Equal("abc123", cookies[0].GetProperty("value").GetString());
        Assert.Equal("/app", cookies[0].GetProperty("path").GetString());
        Assert.Equal("site.example", cookies[0].GetProperty("domain").GetString());
        Assert.Equal("2026-10-21T07:28:00Z", cookies[0].GetProperty("expires").GetString());
        Assert.True(cookies[0].GetProperty("httpOnly").GetBoolean());
        Assert.True(cookies[0].GetProperty("secure").GetBoolean());
        Assert.Equal(("theme", "dark"), (cookies[1].GetProperty("name").GetString(), cookies[1].GetProperty("value").GetString()));
        Assert.False(cookies[1].TryGetProperty("httpOnly", out _));
    }

    [Fact]
    public void A_repeated_cookie_attribute_is_written_once()
    {
        var har = RoundTripTests.Export([Get(new ConnectionInfo(), new KeyValuePair<string, string>("Set-Cookie", "a=1; Path=/x; path=/y; HttpOnly; HttpOnly"))], FlowFormat.Har);

        var cookie = JsonNode.Parse(har)!["log"]!["entries"]![0]!["response"]!["cookies"]![0]!.AsObject();
        Assert.Equal("/x", cookie["path"]!.GetValue<string>());
        Assert.Equal(["name", "value", "path", "httpOnly"], cookie.Select(p => p.Key));
    }

    [Fact]
    public void Connect_includes_ssl_and_the_total_counts_each_phase_once()
    {
        // The connection is opened for this request, 10 ms after it arrived: 20 ms TCP, then 30 ms TLS.
        var entry = Entry(Get(new ConnectionInfo { TimestampStart = T0 + 0.010, TimestampTcpSetup = T0 + 0.030, TimestampTlsSetup = T0 + 0.060 }));

        var timings = entry.GetProperty("timings");
        Assert.Equal(50, timings.GetProperty("connect").GetDouble(), 3);
        Assert.Equal(30, timings.GetProperty("ssl").GetDouble(), 3);
        Assert.Equal(50, timings.GetProperty("send").GetDouble(), 3);      // 100 ms of request, less the connect
        Assert.Equal(50, timings.GetProperty("wait").GetDouble(), 3);
        Assert.Equal(10, timings.GetProperty("receive").GetDouble(), 3);
        Assert.Equal(160, entry.GetProperty("time").GetDouble(), 3);       // first request byte to last response byte
    }

    [Fact]
    public void A_request_on_a_reused_connection_has_no_connect_time()
    {
        var entry = Entry(Get(new ConnectionInfo { TimestampStart = T0 - 5, TimestampTcpSetup = T0 - 4.99, TimestampTlsSetup = T0 - 4.95 }));

        Assert.Equal(-1, entry.GetProperty("timings").GetProperty("connect").GetDouble());
        Assert.Equal(-1, entry.GetProperty("timings").GetProperty("ssl").GetDouble());
        Assert.Equal(160, entry.GetProperty("time").GetDouble(), 3);
    }

    private static HttpFlow ImportOne(Action<JsonObject> change)
    {
        var har = JsonNode.Parse("""
            {"log":{"version":"1.2","creator":{"name":"browser","version":"1"},"entries":[{
              "startedDateTime":"2026-11-21T10:00:00.000Z","time":100,
              "request":{"method":"POST","url":"http://site.example/form","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":-1},
              "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"content":{"size":0,"mimeType":""},"redirectURL":"","headersSize":-1,"bodySize":0},
              "cache":{},"timings":{"blocked":5,"dns":10,"connect":20,"ssl":-1,"send":15,"wait":40,"receive":10}}]}}
            """)!.AsObject();
        change(har["log"]!["entries"]![0]!.AsObject());
        return Assert.Single(RoundTripTests.Import(Encoding.UTF8.GetBytes(har.ToJsonString()), FlowFormat.Har).Flows);
    }

    [Theory]
    [InlineData("2024-01-01T12:00:00.123Z", "2024-01-01T12:00:00.1230000+00:00")]                 // Chrome
    [InlineData("2024-01-01T12:00:00.123456+00:00", "2024-01-01T12:00:00.1234560+00:00")]          // mitmproxy
    [InlineData("2024-01-01T14:00:00+02:00", "2024-01-01T12:00:00.0000000+00:00")]
    [InlineData("2024-01-01T07:30:00.5-0430", "2024-01-01T12:00:00.5000000+00:00")]
    [InlineData("2024-01-01 12:00:00.123456789", "2024-01-01T12:00:00.1234567+00:00")]           // space, 9 digits, no offset = UTC
    [InlineData("2024-01-01T12:00Z", "2024-01-01T12:00:00.0000000+00:00")]
    public void Started_date_time_reads_iso_8601(string started, string expected)
    {
        var flow = ImportOne(entry => entry["startedDateTime"] = started);

        Assert.Equal(Timestamps.FromDateTimeOffset(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture)), flow.Request.TimestampStart, 6);
    }

    [Theory]
    [InlineData("12:00")]
    [InlineData("01/02/2024 10:00")]
    [InlineData("2024-01-01")]
    [InlineData("2024-1-1T12:00:00Z")]
    [InlineData("Mon, 01 Jan 2024 12:00:00 GMT")]
    [InlineData("2024-13-01T12:00:00Z")]
    [InlineData("2024-02-30T12:00:00Z")]
    [InlineData("2024-01-01T24:00:00Z")]
    [InlineData("2024-01-01T12:00:00+15:00")]
    [InlineData("2024-01-01T12:00:00.1234567890Z")]
    [InlineData("2024-01-01T12:00:00Z\n")]
    [InlineData("٢٠٢٤-01-01T12:00:00Z")]
    public void Started_date_time_that_is_not_iso_8601_is_refused_with_its_path(string started)
    {
        var e = Assert.ThrowsAny<FlowFormatException>(() => ImportOne(entry => entry["startedDateTime"] = started));

        Assert.StartsWith("$.log.entries[0].startedDateTime: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_websocket_entry_whose_upgrade_failed_is_no_websocket_flow_and_keeps_its_error()
    {
        // As Chrome writes a refused connection: the resource type, status 0 and the network error.
        var flow = ImportOne(entry =>
        {
            entry["_resourceType"] = "websocket";
            entry["request"]!["url"] = "ws://site.example/socket";
            entry["response"]!["status"] = 0;
            entry["response"]!["statusText"] = "";
            entry["response"]!["_error"] = "net::ERR_CONNECTION_REFUSED";
            entry["_webSocketMessages"] = new JsonArray();
        });

        Assert.Null(flow.WebSocket);
        Assert.False(flow.IsWebSocket);
        Assert.Null(flow.Response);
        Assert.Equal("net::ERR_CONNECTION_REFUSED", flow.Error);
    }

    [Fact]
    public void A_websocket_entry_without_a_response_is_no_websocket_flow()
    {
        var flow = ImportOne(entry =>
        {
            entry["_resourceType"] = "websocket";
            entry.Remove("response");
        });

        Assert.Null(flow.WebSocket);
    }

    [Fact]
    public void A_websocket_entry_with_a_101_or_frames_is_a_websocket_flow()
    {
        var upgraded = ImportOne(entry =>
        {
            entry["_resourceType"] = "websocket";
            entry["response"]!["status"] = 101;
        });
        Assert.NotNull(upgraded.WebSocket);
        Assert.Empty(upgraded.WebSocket.Messages);

        // A HAR writer that leaves the status out but kept the frames: the upgrade evidently succeeded.
        var withFrames = ImportOne(entry =>
        {
            entry["response"]!["status"] = 0;
            entry["_webSocketMessages"] = JsonNode.Parse("""[{"type":"send","time":1700000000.5,"opcode":1,"data":"hi"}]""");
        });
        Assert.Equal("hi", Assert.Single(withFrames.WebSocket!.Messages).Text);
    }

    [Fact]
    public void A_form_given_only_as_params_imports_as_its_urlencoded_body()
    {
        var flow = ImportOne(entry => entry["request"]!["postData"] = JsonNode.Parse("""
            {"mimeType":"application/x-www-form-urlencoded","params":[{"name":"user","value":"ada lovelace"},{"name":"lang","value":"en&fr"}]}
            """));

        Assert.Equal("user=ada%20lovelace&lang=en%26fr", Encoding.UTF8.GetString(flow.Request.Content!));
    }

    [Fact]
    public void A_multipart_form_given_only_as_params_is_not_passed_off_as_urlencoded()
    {
        var flow = ImportOne(entry => entry["request"]!["postData"] = JsonNode.Parse("""
            {"mimeType":"multipart/form-data; boundary=x","params":[{"name":"file","fileName":"a.txt"}]}
            """));

        Assert.Null(flow.Request.Content);
    }

    [Fact]
    public void Blocked_dns_and_connect_come_before_the_request_is_sent()
    {
        var flow = ImportOne(_ => { });

        var start = flow.Request.TimestampStart;
        Assert.Equal(0.050, flow.Request.TimestampEnd!.Value - start, 6);   // blocked + dns + connect + send
        Assert.Equal(0.090, flow.Response!.TimestampStart - start, 6);
        Assert.Equal(0.100, flow.Response.TimestampEnd!.Value - start, 6);
    }

    [Fact]
    public void A_compressed_body_is_written_decoded_with_its_compression_and_imported_back_as_wire_bytes()
    {
        var page = Encoding.UTF8.GetBytes("<html>" + new string('a', 4000) + " the secret word</html>");
        var wire = Gzip(page);
        var flow = Get(new ConnectionInfo(), new("Content-Encoding", "gzip"), new("Content-Type", "text/html"));
        flow.Response!.Content = wire;
        flow.Response.ContentLength = wire.Length;

        var har = RoundTripTests.Export([flow], FlowFormat.Har);
        var response = JsonDocument.Parse(har).RootElement.GetProperty("log").GetProperty("entries")[0].GetProperty("response");
        var content = response.GetProperty("content");
        Assert.Equal(Encoding.UTF8.GetString(page), content.GetProperty("text").GetString());
        Assert.False(content.TryGetProperty("encoding", out _));
        Assert.Equal(page.Length, content.GetProperty("size").GetInt32());
        Assert.Equal(page.Length - wire.Length, content.GetProperty("compression").GetInt32());
        Assert.Equal(wire.Length, response.GetProperty("bodySize").GetInt32());

        // Back in, the body is what the headers say crossed the wire: gzip again, and it decodes to the page.
        var imported = Assert.Single(RoundTripTests.Import(har, FlowFormat.Har).Flows).Response!;
        Assert.Equal(page, ContentEncodings.DecodeOrRaw("gzip", imported.Content!));
        Assert.True(WsWeb.Core.Filters.FlowFilter.Parse("~bs \"the secret word\"").Matches(new HttpFlow(flow.Request, T0) { Response = imported }));
    }

    [Fact]
    public void A_har_that_holds_the_wire_bytes_of_a_compressed_body_imports_them_as_they_are()
    {
        var wire = Gzip("compressed"u8.ToArray());
        var flow = ImportOne(entry =>
        {
            entry["response"]!["headers"] = JsonNode.Parse("""[{"name":"Content-Encoding","value":"gzip"}]""");
            entry["response"]!["content"] = new JsonObject { ["size"] = wire.Length, ["mimeType"] = "text/plain", ["text"] = System.Convert.ToBase64String(wire), ["encoding"] = "base64" };
        });

        Assert.Equal(wire, flow.Response!.Content);
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }
}
