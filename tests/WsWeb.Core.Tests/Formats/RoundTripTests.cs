using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Formats;

public class RoundTripTests
{
    public static TheoryData<FlowFormat> Formats => [FlowFormat.Json, FlowFormat.Har, FlowFormat.Mitmproxy];

    internal static byte[] Export(IEnumerable<HttpFlow> flows, FlowFormat format)
    {
        using var output = new MemoryStream();
        FlowFormats.Export(flows, format, output);
        return output.ToArray();
    }

    internal static FlowImportResult Import(byte[] data, FlowFormat? format = null, FlowImportOptions? options = null)
    {
        using var input = new MemoryStream(data);
        return FlowFormats.Import(input, format, options);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_field_survives_a_round_trip(FlowFormat format)
    {
        var flows = SampleFlows.All();
        var data = Export(flows, format);

        Assert.Equal(format, FlowFormats.Detect(data.AsSpan(0, Math.Min(data.Length, FlowFormats.DetectLength))));
        var result = Import(data);

        Assert.Equal(format, result.Format);
        Assert.Equal(0, result.Skipped);
        Assert.Equal(flows.Count, result.Flows.Count);
        Assert.Equal(7, result.MessageCount);
        for (var i = 0; i < flows.Count; i++)
        {
            FlowAssert.Equal(flows[i], result.Flows[i]);

            // Byte totals count what each peer sent, the original of an edited message, as the capture counted them.
            // A mitmproxy file keeps only the content forwarded (it has no field for an original), so there an edited
            // message counts what went out.
            if (format != FlowFormat.Mitmproxy)
            {
                Assert.Equal(flows[i].WebSocket?.Totals, result.Flows[i].WebSocket?.Totals);
            }
        }

        // And the import writes the same bytes again.
        Assert.Equal(data, Export(result.Flows, format));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_replay_stays_a_replay_of_the_same_flow(FlowFormat format)
    {
        var flows = SampleFlows.All();

        var imported = Import(Export(flows, format)).Flows;

        Assert.Equal(["request", "response", null], imported.Select(f => f.IsReplay));
        Assert.Equal([flows[0].ReplayOf, null, null], imported.Select(f => f.ReplayOf));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_file_from_before_replays_imports_flows_that_are_no_replay(FlowFormat format)
    {
        var data = WithoutReplayFields(Export(SampleFlows.All(), format), format);

        var imported = Import(data, format).Flows;

        Assert.Equal(3, imported.Count);
        Assert.All(imported, f => Assert.Null(f.IsReplay));
        Assert.All(imported, f => Assert.Null(f.ReplayOf));
    }

    /// <summary>An export as WsWeb wrote it before flows had IsReplay and ReplayOf: no such fields at all.</summary>
    private static byte[] WithoutReplayFields(byte[] data, FlowFormat format)
    {
        if (format == FlowFormat.Mitmproxy)
        {
            using var output = new MemoryStream();
            var position = 0;
            while (position < data.Length)
            {
                var state = (TnetDict)Tnetstring.ReadNext(data, ref position);
                var extras = ((TnetDict)state["metadata"]!)["wsweb"] as TnetDict;
                var old = Without(state, "is_replay");
                if (extras is not null)
                {
                    ((TnetDict)old["metadata"]!).Set("wsweb", Without(extras, "replay_of"));
                }

                Tnetstring.Write(old, output);
            }

            return output.ToArray();
        }

        var root = JsonNode.Parse(data)!;
        var flows = format == FlowFormat.Json
            ? root["flows"]!.AsArray().Select(f => f!.AsObject())
            : root["log"]!["entries"]!.AsArray().Select(e => e!["_wsweb"]!.AsObject());
        foreach (var flow in flows)
        {
            Assert.True(flow.Remove("isReplay"));
            Assert.True(flow.Remove("replayOf"));
        }

        return Encoding.UTF8.GetBytes(root.ToJsonString());

        static TnetDict Without(TnetDict dict, string key)
        {
            var copy = new TnetDict();
            foreach (var (name, value) in dict.Entries.Where(e => e.Key != key))
            {
                copy.Set(name, value);
            }

            return copy;
        }
    }

    [Theory]
    [InlineData(FlowFormat.Json)]
    [InlineData(FlowFormat.Har)]
    public void An_edited_messages_bytes_count_its_original_after_import_as_they_did_when_it_was_captured(FlowFormat format)
    {
        // As the relay records a message: counted when it arrives, edited by a hook afterwards.
        var flow = SampleFlows.WebSocket();
        var message = new WebSocketMessage(Opcode.Text, false, Encoding.UTF8.GetBytes("what the server sent"), 1_700_000_100);
        flow.WebSocket!.Add(message);
        message.Text = "edited";
        var captured = flow.WebSocket.Totals;

        var imported = Import(Export([flow], format)).Flows[0];

        Assert.Equal("edited", imported.WebSocket!.Messages[^1].Text);
        Assert.Equal(captured, imported.WebSocket.Totals);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Trimmed_message_indices_stay_absolute(FlowFormat format)
    {
        var flow = SampleFlows.WebSocket();
        var ws = new WebSocketData(maxMessages: 10);
        for (var i = 0; i < 25; i++)
        {
            ws.Add(new WebSocketMessage(Opcode.Text, i % 2 == 0, Encoding.UTF8.GetBytes($"m{i}"), SampleFlows.T0 + i));
        }

        flow.WebSocket = ws;
        var imported = Import(Export([flow], format)).Flows[0].WebSocket!;

        Assert.Equal(ws.TrimmedCount, imported.TrimmedCount);
        Assert.Equal(ws.Messages.Select(m => m.Index), imported.Messages.Select(m => m.Index));
        Assert.Equal(ws.Messages[0].Index, imported.Find(ws.Messages[0].Index)!.Index);
    }

    [Fact]
    public void Json_writes_text_messages_as_text_and_the_rest_as_base64()
    {
        var json = Encoding.UTF8.GetString(Export([SampleFlows.WebSocket()], FlowFormat.Json));
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal("wsweb-flows", root.GetProperty("format").GetString());
        var messages = root.GetProperty("flows")[0].GetProperty("webSocket").GetProperty("messages");

        Assert.Equal("text", messages[0].GetProperty("encoding").GetString());
        Assert.Equal("hello ✓ \"quoted\" <b>", messages[0].GetProperty("content").GetString());
        Assert.Equal("base64", messages[1].GetProperty("encoding").GetString());
        Assert.Equal(Convert.ToBase64String(SampleFlows.NotUtf8), messages[1].GetProperty("content").GetString());
        Assert.Equal("binary", messages[1].GetProperty("type").GetString());
        Assert.Equal("before edit", messages[4].GetProperty("originalContent").GetString());
        Assert.Equal(4, messages[4].GetProperty("index").GetInt64());
        Assert.Contains("\"content\": \"hello ✓ \\\"quoted\\\" <b>\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Har_export_has_chromes_websocket_shape()
    {
        using var doc = JsonDocument.Parse(Export([SampleFlows.WebSocket(), SampleFlows.Post()], FlowFormat.Har));
        var log = doc.RootElement.GetProperty("log");
        Assert.Equal("1.2", log.GetProperty("version").GetString());
        var ws = log.GetProperty("entries")[0];
        Assert.Equal("websocket", ws.GetProperty("_resourceType").GetString());
        Assert.Equal("wss://echo.example:8443/chat?room=1&name=caf%C3%A9", ws.GetProperty("request").GetProperty("url").GetString());
        Assert.Equal("2023-11-14T22:13:20.123456Z", ws.GetProperty("startedDateTime").GetString());
        Assert.Equal("::1", ws.GetProperty("serverIPAddress").GetString());
        var query = ws.GetProperty("request").GetProperty("queryString");
        Assert.Equal("café", query[1].GetProperty("value").GetString());

        var messages = ws.GetProperty("_webSocketMessages");
        Assert.Equal("send", messages[0].GetProperty("type").GetString());
        Assert.Equal(1, messages[0].GetProperty("opcode").GetInt32());
        Assert.Equal("hello ✓ \"quoted\" <b>", messages[0].GetProperty("data").GetString());
        Assert.Equal(SampleFlows.T0 + 1.25, messages[0].GetProperty("time").GetDouble());
        Assert.Equal("receive", messages[1].GetProperty("type").GetString());
        Assert.Equal(2, messages[1].GetProperty("opcode").GetInt32());
        Assert.Equal(Convert.ToBase64String(SampleFlows.NotUtf8), messages[1].GetProperty("data").GetString());
        Assert.True(messages[2].GetProperty("_wsweb").GetProperty("dropped").GetBoolean());
        var close = ws.GetProperty("_wsweb").GetProperty("webSocket");
        Assert.Equal(4001, close.GetProperty("closeCode").GetInt32());
        Assert.Equal("bye", close.GetProperty("closeReason").GetString());
        Assert.True(close.GetProperty("closedByClient").GetBoolean());

        var post = log.GetProperty("entries")[1].GetProperty("request").GetProperty("postData");
        Assert.Equal("base64", post.GetProperty("encoding").GetString());
        Assert.Equal(Convert.ToBase64String(SampleFlows.NotUtf8), post.GetProperty("text").GetString());
    }

    [Fact]
    public void Imports_a_chrome_devtools_har_with_a_binary_message()
    {
        // The shape Chrome's "Save all as HAR with content" writes for a WebSocket (trimmed to what matters).
        const string har = """
        {
          "log": {
            "version": "1.2",
            "creator": { "name": "WebInspector", "version": "537.36" },
            "pages": [],
            "entries": [
              {
                "_initiator": { "type": "script" },
                "_priority": "High",
                "_resourceType": "websocket",
                "cache": {},
                "connection": "1234",
                "request": {
                  "method": "GET",
                  "url": "wss://echo.websocket.org/",
                  "httpVersion": "HTTP/1.1",
                  "headers": [
                    { "name": "Host", "value": "echo.websocket.org" },
                    { "name": "Upgrade", "value": "websocket" }
                  ],
                  "queryString": [],
                  "cookies": [],
                  "headersSize": -1,
                  "bodySize": 0
                },
                "response": {
                  "status": 101,
                  "statusText": "Switching Protocols",
                  "httpVersion": "HTTP/1.1",
                  "headers": [ { "name": "Upgrade", "value": "websocket" } ],
                  "cookies": [],
                  "content": { "size": 0, "mimeType": "x-unknown" },
                  "redirectURL": "",
                  "headersSize": -1,
                  "bodySize": -1,
                  "_transferSize": 0,
                  "_error": null
                },
                "serverIPAddress": "66.241.124.119",
                "startedDateTime": "2024-03-01T10:00:00.250Z",
                "time": 12.5,
                "timings": { "blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 12.5, "receive": 0, "_blocked_queueing": -1 },
                "_webSocketMessages": [
                  { "type": "receive", "time": 1709287200.301, "opcode": 1, "data": "Request served by 1234" },
                  { "type": "send", "time": 1709287201.5, "opcode": 1, "data": "héllo" },
                  { "type": "send", "time": 1709287202.75, "opcode": 2, "data": "AAH/gA==" },
                  { "type": "receive", "time": 1709287202.8, "opcode": 2, "data": "AAH/gA==" }
                ]
              }
            ]
          }
        }
        """;

        var result = Import(Encoding.UTF8.GetBytes(har));

        Assert.Equal(FlowFormat.Har, result.Format);
        var flow = Assert.Single(result.Flows);
        FlowAssert.Imported(flow);
        Assert.Equal("https", flow.Request.Scheme);
        Assert.Equal("echo.websocket.org", flow.Request.Host);
        Assert.Equal(443, flow.Request.Port);
        Assert.Equal("/", flow.Request.Path);
        Assert.Equal(1709287200.25, flow.Request.TimestampStart, 6);
        Assert.Equal(101, flow.Response!.StatusCode);
        Assert.Null(flow.Response.Content);
        Assert.Equal("66.241.124.119:443", flow.ServerConn.PeerName);
        var messages = flow.WebSocket!.Messages;
        Assert.Equal(4, messages.Count);
        Assert.Equal(4, result.MessageCount);
        Assert.False(messages[0].FromClient);
        Assert.Equal("Request served by 1234", messages[0].Text);
        Assert.Equal(1709287200.301, messages[0].Timestamp);
        Assert.True(messages[1].FromClient);
        Assert.Equal("héllo", messages[1].Text);
        Assert.Equal(Opcode.Binary, messages[2].Type);
        Assert.Equal(new byte[] { 0x00, 0x01, 0xFF, 0x80 }, messages[2].Content);
        Assert.True(messages[2].FromClient);
        Assert.False(messages[3].FromClient);
        Assert.Null(flow.WebSocket.CloseCode);
    }

    [Fact]
    public void Imports_mitmproxys_har_shape()
    {
        // savehar.py (mitmproxy ≥ 10.1): isoformat() dates with +00:00, null timings, base64 bodies flagged
        // with "encoding", and a failed flow with status 0 and _error.
        const string har = """
        {
            "log": {
                "version": "1.2",
                "creator": { "name": "mitmproxy exporthar", "version": "0.1", "comment": "mitmproxy version 11.0.0" },
                "pages": [],
                "entries": [
                    {
                        "startedDateTime": "2024-05-01T12:00:00.500000+00:00",
                        "time": 30.0,
                        "request": {
                            "method": "POST",
                            "url": "http://example.com:8000/api/../v1?q=a+b&r=%2F",
                            "httpVersion": "HTTP/1.1",
                            "cookies": [],
                            "headers": [ { "name": "Host", "value": "example.com:8000" }, { "name": "Content-Type", "value": "text/plain" } ],
                            "queryString": [ { "name": "q", "value": "a b" } ],
                            "headersSize": 60,
                            "bodySize": 5,
                            "postData": { "mimeType": "text/plain", "text": "hello", "params": [] }
                        },
                        "response": {
                            "status": 200,
                            "statusText": "OK",
                            "httpVersion": "HTTP/1.1",
                            "cookies": [],
                            "headers": [ { "name": "Content-Type", "value": "image/png" } ],
                            "content": { "size": 4, "compression": 0, "mimeType": "image/png", "text": "iVBORw==", "encoding": "base64" },
                            "redirectURL": "",
                            "headersSize": 30,
                            "bodySize": 4
                        },
                        "cache": {},
                        "timings": { "connect": null, "ssl": null, "send": 10.0, "receive": 5.0, "wait": 15.0 },
                        "serverIPAddress": "93.184.216.34"
                    },
                    {
                        "startedDateTime": "2024-05-01T12:00:01+00:00",
                        "time": 0,
                        "request": { "method": "GET", "url": "ws://example.com/socket", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [], "queryString": [], "headersSize": 0, "bodySize": 0 },
                        "response": { "status": 101, "statusText": "Switching Protocols", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [], "content": { "size": 0, "compression": 0, "mimeType": "", "text": "" }, "redirectURL": "", "headersSize": 0, "bodySize": 0 },
                        "cache": {},
                        "timings": { "connect": null, "ssl": null, "send": 0, "receive": 0, "wait": 0 },
                        "_resourceType": "websocket",
                        "_webSocketMessages": [
                            { "type": "send", "time": 1714564801.25, "opcode": 1, "data": "ping?" },
                            { "type": "receive", "time": 1714564801.5, "opcode": 2, "data": "/w==" }
                        ]
                    },
                    {
                        "startedDateTime": "2024-05-01T12:00:02.000000+00:00",
                        "time": 0,
                        "request": { "method": "GET", "url": "https://down.example/", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [], "queryString": [], "headersSize": 0, "bodySize": 0 },
                        "response": { "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [], "content": {}, "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 0, "_error": "Connection refused" },
                        "cache": {},
                        "timings": { "connect": null, "ssl": null, "send": 0, "receive": 0, "wait": 0 }
                    }
                ]
            }
        }
        """;

        var result = Import(Encoding.UTF8.GetBytes(har));

        Assert.Equal(3, result.Flows.Count);
        var post = result.Flows[0];
        Assert.Equal("POST", post.Request.Method);
        Assert.Equal(8000, post.Request.Port);
        Assert.Equal("/api/../v1?q=a+b&r=%2F", post.Request.Path);
        Assert.Equal("hello", Encoding.UTF8.GetString(post.Request.Content!));
        Assert.Equal(1714564800.5, post.Request.TimestampStart, 6);
        Assert.Equal(1714564800.51, post.Request.TimestampEnd!.Value, 6);
        Assert.Equal(1714564800.525, post.Response!.TimestampStart, 6);
        Assert.Equal(1714564800.530, post.Response.TimestampEnd!.Value, 6);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, post.Response.Content);
        Assert.Equal("93.184.216.34:8000", post.ServerConn.PeerName);

        var ws = result.Flows[1];
        Assert.Equal("http", ws.Request.Scheme);
        Assert.Equal(80, ws.Request.Port);
        Assert.Equal([], ws.Response!.Content!);
        Assert.Equal("ping?", ws.WebSocket!.Messages[0].Text);
        Assert.Equal(new byte[] { 0xFF }, ws.WebSocket.Messages[1].Content);
        Assert.Equal(2, result.MessageCount);

        var failed = result.Flows[2];
        Assert.Null(failed.Response);
        Assert.Equal("Connection refused", failed.Error);
    }

    [Fact]
    public void Har_frames_with_control_opcodes_are_left_out_with_a_warning()
    {
        const string har = """
        {"log":{"entries":[{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"ws://a/"},
         "response":{"status":101},"_webSocketMessages":[
           {"type":"send","time":1.5,"opcode":9,"data":""},
           {"type":"send","time":2.5,"opcode":1,"data":"x"}]}]}}
        """;
        var result = Import(Encoding.UTF8.GetBytes(har));
        Assert.Single(result.Flows[0].WebSocket!.Messages);
        Assert.Contains(result.Warnings, w => w.Contains("1 WebSocket frame", StringComparison.Ordinal));
    }

    [Fact]
    public void Mitmproxy_export_is_version_17_with_the_complete_8_1_1_key_set()
    {
        var data = Export([SampleFlows.WebSocket()], FlowFormat.Mitmproxy);
        var state = Assert.IsType<TnetDict>(Tnetstring.Parse(data));

        Assert.Equal(17, Assert.IsType<TnetInt>(state["version"]).Value);
        Assert.Equal("http", Assert.IsType<TnetString>(state["type"]).Value);
        Assert.Equal(
            ["client_conn", "comment", "error", "id", "intercepted", "is_replay", "marked", "metadata", "request", "response", "server_conn", "timestamp_created", "type", "version", "websocket"],
            state.Entries.Select(e => e.Key).Order(StringComparer.Ordinal));
        Assert.Equal(
            ["address", "alpn", "alpn_offers", "certificate_list", "cipher_list", "cipher_name", "error", "id", "mitmcert", "sni", "sockname", "state", "timestamp_end", "timestamp_start", "timestamp_tls_setup", "tls", "tls_established", "tls_extensions", "tls_version"],
            Keys(state, "client_conn"));
        Assert.Equal(
            ["address", "alpn", "alpn_offers", "certificate_list", "cipher_list", "cipher_name", "error", "id", "ip_address", "sni", "source_address", "state", "timestamp_end", "timestamp_start", "timestamp_tcp_setup", "timestamp_tls_setup", "tls", "tls_established", "tls_version", "via", "via2"],
            Keys(state, "server_conn"));
        Assert.Equal(
            ["authority", "content", "headers", "host", "http_version", "method", "path", "port", "scheme", "timestamp_end", "timestamp_start", "trailers"],
            Keys(state, "request"));
        Assert.Equal(
            ["content", "headers", "http_version", "reason", "status_code", "timestamp_end", "timestamp_start", "trailers"],
            Keys(state, "response"));
        Assert.Equal(["close_code", "close_reason", "closed_by_client", "messages", "timestamp_end"], Keys(state, "websocket"));

        var request = (TnetDict)state["request"]!;
        Assert.IsType<TnetString>(request["host"]);
        Assert.IsType<TnetBytes>(request["method"]);
        var header = Assert.IsType<TnetList>(Assert.IsType<TnetList>(request["headers"]).Items[0]);
        Assert.All(header.Items, h => Assert.IsType<TnetBytes>(h));
        var message = Assert.IsType<TnetList>(Assert.IsType<TnetList>(((TnetDict)state["websocket"]!)["messages"]).Items[1]);
        Assert.Equal(['#', '!', ',', '^', '!', '!'], message.Items.Select(i => i.Tag));
    }

    private static string[] Keys(TnetDict state, string key) =>
        [.. Assert.IsType<TnetDict>(state[key]).Entries.Select(e => e.Key).Order(StringComparer.Ordinal)];

    [Fact]
    public void Reads_a_version_21_flow_with_renamed_keys_and_skips_other_flow_types()
    {
        static TnetValue S(string s) => new TnetString(s);
        static TnetValue Bs(string s) => new TnetBytes(Encoding.UTF8.GetBytes(s));
        static TnetValue Addr(string host, int port) => TnetList.Of(S(host), new TnetInt(port));
        var client = new TnetDict()
            .Set("id", S("cid")).Set("peername", Addr("192.168.1.2", 5555)).Set("sockname", Addr("0.0.0.0", 8080))
            .Set("state", TnetNull.Instance).Set("proxy_mode", S("regular")).Set("transport_protocol", S("tcp"))
            .Set("cipher", S("TLS_CHACHA20")).Set("tls_version", S("TLSv1.3")).Set("sni", S("h.example")).Set("alpn", Bs("h2"))
            .Set("timestamp_start", new TnetFloat(10.5)).Set("timestamp_tls_setup", new TnetFloat(10.75)).Set("timestamp_end", TnetNull.Instance)
            .Set("certificate_list", new TnetList([])).Set("mitmcert", TnetNull.Instance).Set("error", TnetNull.Instance);
        var server = new TnetDict()
            .Set("id", S("sid")).Set("address", Addr("h.example", 443)).Set("peername", Addr("2001:db8::1", 443)).Set("sockname", Addr("::", 50000))
            .Set("via", TnetNull.Instance).Set("cipher", TnetNull.Instance).Set("timestamp_start", new TnetInt(11)).Set("timestamp_tcp_setup", new TnetFloat(11.25));
        var request = new TnetDict()
            .Set("host", S("h.example")).Set("port", new TnetInt(443)).Set("method", Bs("GET")).Set("scheme", Bs("https"))
            .Set("authority", Bs("h.example")).Set("path", Bs("/ws")).Set("http_version", Bs("HTTP/1.1"))
            .Set("headers", TnetList.Of(TnetList.Of(Bs("upgrade"), Bs("websocket"))))
            .Set("content", Bs("")).Set("trailers", TnetNull.Instance).Set("timestamp_start", new TnetFloat(12)).Set("timestamp_end", new TnetFloat(12.5));
        var response = new TnetDict()
            .Set("http_version", Bs("HTTP/1.1")).Set("status_code", new TnetInt(101)).Set("reason", Bs("Switching Protocols"))
            .Set("headers", new TnetList([])).Set("content", Bs("")).Set("trailers", TnetNull.Instance)
            .Set("timestamp_start", new TnetFloat(13)).Set("timestamp_end", new TnetFloat(13.5));
        var websocket = new TnetDict()
            .Set("messages", TnetList.Of(
                TnetList.Of(new TnetInt(1), TnetBool.True, Bs("hi"), new TnetFloat(14.25), TnetBool.False, TnetBool.False),
                TnetList.Of(new TnetInt(2), TnetBool.False, new TnetBytes([0xFF]), new TnetInt(15), TnetBool.False, TnetBool.True)))
            .Set("closed_by_client", TnetBool.False).Set("close_code", new TnetInt(1000)).Set("close_reason", S("")).Set("timestamp_end", new TnetFloat(16));
        var http = new TnetDict()
            .Set("id", S("fid")).Set("type", S("http")).Set("version", new TnetInt(21)).Set("error", TnetNull.Instance)
            .Set("client_conn", client).Set("server_conn", server).Set("intercepted", TnetBool.False).Set("is_replay", TnetNull.Instance)
            .Set("marked", S("")).Set("metadata", new TnetDict()).Set("comment", S("")).Set("timestamp_created", new TnetFloat(9.5))
            .Set("request", request).Set("response", response).Set("websocket", websocket);
        var tcp = new TnetDict().Set("id", S("t")).Set("type", S("tcp")).Set("version", new TnetInt(21)).Set("messages", new TnetList([]));
        var udp = new TnetDict().Set("id", S("u")).Set("type", S("udp")).Set("version", new TnetInt(20));

        var data = Tnetstring.Serialize(tcp).Concat(Tnetstring.Serialize(http)).Concat(Tnetstring.Serialize(udp)).ToArray();
        var result = Import(data);

        Assert.Equal(2, result.Skipped);
        Assert.Equal(2, result.Warnings.Count);
        var flow = Assert.Single(result.Flows);
        FlowAssert.Imported(flow);
        Assert.Equal("fid", flow.Id);
        Assert.Equal("192.168.1.2:5555", flow.ClientConn.PeerName);
        Assert.Equal("0.0.0.0:8080", flow.ClientConn.SockName);
        Assert.Equal("TLS_CHACHA20", flow.ClientConn.Cipher);
        Assert.Equal("h2", flow.ClientConn.Alpn);
        Assert.True(flow.ClientConn.TlsEstablished);
        Assert.Equal("[2001:db8::1]:443", flow.ServerConn.PeerName);
        Assert.Equal("[::]:50000", flow.ServerConn.SockName);
        Assert.Equal("h.example:443", flow.ServerConn.Address);
        Assert.Equal(11, flow.ServerConn.TimestampStart);
        Assert.False(flow.ServerConn.TlsEstablished);
        Assert.Equal("upgrade", flow.Request.Headers[0].Key);
        Assert.Equal(2, flow.WebSocket!.Messages.Count);
        Assert.Equal("hi", flow.WebSocket.Messages[0].Text);
        Assert.True(flow.WebSocket.Messages[1].Injected);
        Assert.Equal(15, flow.WebSocket.Messages[1].Timestamp);
        Assert.False(flow.WebSocket.ClosedByClient);
        Assert.Equal(1000, flow.WebSocket.CloseCode);
    }

    [Fact]
    public void Empty_exports_import_as_no_flows()
    {
        Assert.Empty(Import(Export([], FlowFormat.Json)).Flows);
        Assert.Empty(Import(Export([], FlowFormat.Har)).Flows);
        Assert.Empty(Import([], FlowFormat.Mitmproxy).Flows);
    }

    [Theory]
    [InlineData(FlowFormat.Json, "application/json", ".json")]
    [InlineData(FlowFormat.Har, "application/json", ".har")]
    [InlineData(FlowFormat.Mitmproxy, "application/octet-stream", ".mitm")]
    public void Content_types_and_extensions(FlowFormat format, string contentType, string extension)
    {
        Assert.Equal(contentType, FlowFormats.ContentType(format));
        Assert.Equal(extension, FlowFormats.FileExtension(format));
    }

    [Theory]
    [InlineData("  \r\n{\"format\": \"wsweb-flows\"", FlowFormat.Json)]
    [InlineData("\uFEFF{\"log\": {\"version\": \"1.2\"", FlowFormat.Har)]
    [InlineData("2304:6:client;", FlowFormat.Mitmproxy)]
    public void Detects_formats_from_the_first_bytes(string head, FlowFormat expected) =>
        Assert.Equal(expected, FlowFormats.Detect(Encoding.UTF8.GetBytes(head)));

    [Theory]
    [InlineData(FlowFormat.Json)]
    [InlineData(FlowFormat.Har)]
    public void A_file_that_starts_with_a_utf8_byte_order_mark_imports(FlowFormat format)
    {
        var flows = SampleFlows.All();
        var data = Export(flows, format);

        var result = Import([0xEF, 0xBB, 0xBF, .. data]);

        Assert.Equal(format, result.Format);
        Assert.Equal(flows.Count, result.Flows.Count);
        FlowAssert.Equal(flows[0], result.Flows[0]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("GET / HTTP/1.1")]
    [InlineData("{\"something\": 1}")]
    [InlineData("[1,2]")]
    [InlineData("12345")]
    public void Unrecognised_input_is_a_format_error(string head) =>
        Assert.Throws<FlowFormatException>(() => FlowFormats.Detect(Encoding.UTF8.GetBytes(head)));
}
