using System.Text;
using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

/// <summary>Bad input of every kind must end in a <see cref="FlowFormatException"/> that says what and where.</summary>
public class HostileInputTests
{
    private static FlowFormatException ImportFails(byte[] data, FlowFormat? format = null, FlowImportOptions? options = null)
    {
        var e = Record.Exception(() => RoundTripTests.Import(data, format, options));
        Assert.NotNull(e);
        Assert.True(e is FlowFormatException, $"expected a FlowFormatException, got {e.GetType().Name}: {e}");
        return (FlowFormatException)e;
    }

    private static FlowFormatException ImportFails(string text, FlowFormat? format = null) => ImportFails(Encoding.UTF8.GetBytes(text), format);

    [Fact]
    public void Every_truncation_of_a_mitmproxy_file_is_a_format_error()
    {
        var data = RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Mitmproxy);
        for (var length = 1; length < data.Length; length += Math.Max(1, length / 50))
        {
            var e = ImportFails(data[..length], FlowFormat.Mitmproxy);
            Assert.Contains("byte", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_truncation_of_json_and_har_is_a_format_error()
    {
        foreach (var format in new[] { FlowFormat.Json, FlowFormat.Har })
        {
            var data = RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], format);
            for (var length = 1; length < data.Length - 1; length += Math.Max(1, length / 30))
            {
                ImportFails(data[..length], format);
            }
        }
    }

    [Fact]
    public void A_huge_declared_length_in_a_flow_file_fails_fast()
    {
        var e = ImportFails(Encoding.ASCII.GetBytes("4294967296:}"));
        Assert.Contains("bad tnetstring length at byte 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_in_a_flow_file_is_refused()
    {
        var value = "0:]";
        for (var i = 0; i < 10_000; i++)
        {
            value = $"{value.Length}:{value}]";
        }

        var e = ImportFails(Encoding.ASCII.GetBytes(value));
        Assert.Contains("nesting deeper than 64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_in_json_is_refused()
    {
        var json = "{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":" + new string('[', 10_000) + new string(']', 10_000) + "}";
        var e = ImportFails(json);
        Assert.Contains("invalid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Input_over_the_size_limit_is_refused()
    {
        var data = RoundTripTests.Export(SampleFlows.All(), FlowFormat.Json);
        var e = ImportFails(data, options: new FlowImportOptions { MaxInputBytes = 100 });
        Assert.Contains("larger than the limit of 100 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tnetstring_payload_over_its_limit_is_refused()
    {
        var data = RoundTripTests.Export([SampleFlows.Post()], FlowFormat.Mitmproxy);
        var e = ImportFails(data, options: new FlowImportOptions { MaxTnetstringLength = 50 });
        Assert.Contains("the limit is 50", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> WrongMitmproxyTypes => new()
    {
        { "websocket", "messages", "websocket.messages (byte" },
        { "request", "port", "request.port (byte" },
        { "request", "headers", "request.headers (byte" },
        { "client_conn", "address", "client_conn.address (byte" },
        { "", "request", "request (byte" },
        { "", "version", "version (byte" },
    };

    [Theory]
    [MemberData(nameof(WrongMitmproxyTypes))]
    public void A_mitmproxy_field_of_the_wrong_type_names_the_path_and_byte(string parent, string key, string expected)
    {
        var state = MitmproxyFlowFormat.ToState(SampleFlows.WebSocket(withCertificate: false));
        var target = parent.Length == 0 ? state : (TnetDict)state[parent]!;
        target.Set(key, key is "version" or "port" ? new TnetString("17") : new TnetInt(42));

        var e = ImportFails(Tnetstring.Serialize(state));

        Assert.StartsWith("mitmproxy flow 1 (byte 0): ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(22)]
    public void Unsupported_mitmproxy_versions_are_refused(int version)
    {
        var state = MitmproxyFlowFormat.ToState(SampleFlows.Post());
        state.Set("version", new TnetInt(version));
        var e = ImportFails(Tnetstring.Serialize(state));
        Assert.Contains($"version {version}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_mitmproxy_messages_are_refused()
    {
        var state = MitmproxyFlowFormat.ToState(SampleFlows.WebSocket(withCertificate: false));
        var ws = (TnetDict)state["websocket"]!;
        ws.Set("messages", TnetList.Of(TnetList.Of(new TnetInt(9), TnetBool.True, new TnetBytes([]), new TnetFloat(1), TnetBool.False, TnetBool.False)));
        Assert.Contains("websocket.messages[0][0]", ImportFails(Tnetstring.Serialize(state)).Message, StringComparison.Ordinal);

        ws.Set("messages", TnetList.Of(TnetList.Of(new TnetInt(1), TnetBool.True)));
        Assert.Contains("websocket.messages[0]", ImportFails(Tnetstring.Serialize(state)).Message, StringComparison.Ordinal);

        ws.Set("messages", TnetList.Of(TnetList.Of(new TnetInt(1), new TnetInt(1), new TnetBytes([]), new TnetFloat(1), TnetBool.False, TnetBool.False)));
        Assert.Contains("websocket.messages[0][1]", ImportFails(Tnetstring.Serialize(state)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_top_level_value_that_is_not_a_dict_is_refused()
    {
        var data = RoundTripTests.Export([SampleFlows.Post()], FlowFormat.Mitmproxy).Concat("3:abc,"u8.ToArray()).ToArray();
        var e = ImportFails(data);
        Assert.Contains("mitmproxy flow 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("is a bytes, expected a dict", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_a_mitmproxy_str_is_refused_with_its_offset()
    {
        var data = RoundTripTests.Export([SampleFlows.Post()], FlowFormat.Mitmproxy);
        var host = Encoding.ASCII.GetBytes("11:api.example;");
        var at = data.AsSpan().IndexOf(host);
        Assert.True(at > 0);
        data[at + 3] = 0xFF;
        var e = ImportFails(data);
        Assert.Equal($"mitmproxy flow 1 (byte 0): server_conn.address[0]: invalid UTF-8 in string at byte {at + 3}", e.Message);
    }

    [Fact]
    public void A_mitmproxy_integer_past_64_bits_names_its_field_and_byte()
    {
        // 2**70 as Python writes it; the placeholder keeps every enclosing length right.
        var flow = SampleFlows.WebSocket(withCertificate: false);
        var state = MitmproxyFlowFormat.ToState(flow);
        var big = "1180591620717411303424";
        ((TnetDict)state["websocket"]!).Set("close_code", new TnetBytes(Encoding.ASCII.GetBytes(new string('X', big.Length))));
        var data = Tnetstring.Serialize(state);
        var placeholder = Encoding.ASCII.GetBytes($"{big.Length}:{new string('X', big.Length)},");
        var at = data.AsSpan().IndexOf(placeholder);
        Encoding.ASCII.GetBytes($"{big.Length}:{big}#").CopyTo(data, at);

        var e = ImportFails(data, FlowFormat.Mitmproxy);

        Assert.Equal($"mitmproxy flow 1 (byte 0): websocket.close_code: integer out of range at byte {at}: \"{big}\"", e.Message);
    }

    [Fact]
    public void A_bad_value_deep_in_a_mitmproxy_list_gives_its_path()
    {
        var data = RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Mitmproxy);
        var text = Encoding.Latin1.GetString(data);
        // The first message's dropped and injected flags, the last two items of its list.
        var at = text.IndexOf("5:false!5:false!]", StringComparison.Ordinal);
        Assert.True(at > 0);
        data[at + 2] = (byte)'x';

        var e = ImportFails(data, FlowFormat.Mitmproxy);

        Assert.Equal($"mitmproxy flow 1 (byte 0): websocket.messages[0][4]: invalid boolean literal at byte {at}: \"xalse\"", e.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(FlowFormat.Har)]
    [InlineData(FlowFormat.Mitmproxy)]
    public void A_gzip_compressed_upload_is_named_as_such(FlowFormat? format)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Har));
        }

        var e = ImportFails(compressed.ToArray(), format);

        Assert.StartsWith("the input looks gzip-compressed", e.Message, StringComparison.Ordinal);
        Assert.Contains("decompress it first", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_zip_archive_upload_is_named_as_such()
    {
        using var archive = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(archive, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            using var entry = zip.CreateEntry("capture.mitm").Open();
            entry.Write(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Mitmproxy));
        }

        var e = ImportFails(archive.ToArray());

        Assert.StartsWith("the input looks like a zip archive", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1}", "$.flows: missing")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":{}}", "$.flows: expected an array, found an object")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":2,\"flows\":[]}", "$.version")]
    [InlineData("{\"format\":\"other\",\"version\":1,\"flows\":[]}", "$.format")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[1]}", "$.flows[0]: expected an object")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{}]}", "$.flows[0].request: missing")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":\"80\",\"path\":\"/\"}}]}", "$.flows[0].request.port: expected an integer, found a string")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":70000,\"path\":\"/\"}}]}", "$.flows[0].request.port: 70000 is out of range")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":80,\"path\":\"/\"},\"webSocket\":{\"messages\":5}}]}", "$.flows[0].webSocket.messages: expected an array, found a number")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":80,\"path\":\"/\"},\"webSocket\":{\"messages\":[{\"type\":\"ping\"}]}}]}", "$.flows[0].webSocket.messages[0].type: \"ping\" is neither")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":80,\"path\":\"/\"},\"webSocket\":{\"messages\":[{\"type\":\"binary\",\"fromClient\":true,\"timestamp\":1,\"encoding\":\"base64\",\"content\":\"!!!\"}]}}]}", "$.flows[0].webSocket.messages[0].content: invalid base64")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":80,\"path\":\"/\"},\"clientConn\":{\"certificateChain\":[1]}}]}", "$.flows[0].clientConn.certificateChain[0]: expected a base64 string")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[] ", "invalid JSON")]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[{\"request\":{\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"a\",\"port\":80,\"path\":\"/\",\"headers\":[[\"X\",\"\\ud800\"]]}}]}", "$.flows[0].request.headers[0][1]: the string holds")]
    public void Json_errors_name_the_path(string json, string expected)
    {
        var e = ImportFails(json, FlowFormat.Json);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"format\":\"wsweb-flows\",\"version\":1,\"flows\":[x]}", 1, 46)]
    [InlineData("\uFEFF{\"format\":\"wsweb-flows\",\n\"version\":1,\"flows\":[x]}", 2, 22)]
    [InlineData("\uFEFF{\"log\":x}", 1, 11)]
    public void Invalid_json_gives_its_position_once_counting_from_one(string json, int line, int column)
    {
        var e = ImportFails(json);

        Assert.StartsWith($"invalid JSON at line {line}, byte {column} of that line: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("BytePositionInLine", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{}", "$.log: missing")]
    [InlineData("{\"log\":{}}", "$.log.entries: missing")]
    [InlineData("{\"log\":{\"entries\":7}}", "$.log.entries: expected an array, found a number")]
    [InlineData("{\"log\":{\"entries\":[{}]}}", "$.log.entries[0].request: missing")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\"}}]}}", "$.log.entries[0].request.url: missing")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"/relative\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\"}]}}", "$.log.entries[0].request.url: \"/relative\" is not an absolute URL")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"ftp://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\"}]}}", "scheme \"ftp\"")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"yesterday\"}]}}", "$.log.entries[0].startedDateTime")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"_webSocketMessages\":[{\"type\":\"send\",\"time\":1,\"opcode\":2,\"data\":\"%%%\"}]}]}}", "$.log.entries[0]._webSocketMessages[0].data: invalid base64")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"_webSocketMessages\":[{\"type\":\"sideways\",\"time\":1,\"opcode\":1,\"data\":\"\"}]}]}}", "$.log.entries[0]._webSocketMessages[0].type")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"_webSocketMessages\":[{\"type\":\"send\",\"opcode\":1,\"data\":\"\"}]}]}}", "$.log.entries[0]._webSocketMessages[0].time: missing")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"_webSocketMessages\":\"x\"}]}}", "$.log.entries[0]._webSocketMessages: expected an array")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"POST\",\"url\":\"http://a/\",\"postData\":{\"text\":\"x\",\"encoding\":\"rot13\"}},\"startedDateTime\":\"2024-01-01T00:00:00Z\"}]}}", "$.log.entries[0].request.postData.encoding")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\"},\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"_webSocketMessages\":[{\"type\":\"send\",\"time\":1,\"opcode\":1,\"data\":\"\\ud800x\"}]}]}}", "$.log.entries[0]._webSocketMessages[0].data: the string holds a \\u escape of half a UTF-16 surrogate pair")]
    [InlineData("{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a/\",\"headers\":[{\"name\":\"X\",\"value\":\"\\udc00\"}]},\"startedDateTime\":\"2024-01-01T00:00:00Z\"}]}}", "$.log.entries[0].request.headers[0].value: the string holds")]
    public void Har_errors_name_the_path(string json, string expected)
    {
        var e = ImportFails(json, FlowFormat.Har);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_garbage_never_escapes_as_another_exception()
    {
        var random = new Random(1234);
        var seeds = new[]
        {
            RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Mitmproxy),
            RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Json),
            RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Har),
        };
        foreach (var seed in seeds)
        {
            for (var i = 0; i < 300; i++)
            {
                var data = (byte[])seed.Clone();
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    data[random.Next(data.Length)] = (byte)random.Next(256);
                }

                var e = Record.Exception(() => RoundTripTests.Import(data));
                Assert.True(e is null or FlowFormatException, $"mutation {i}: {e}");
            }
        }
    }

    [Fact]
    public void The_largest_flow_WsWeb_keeps_fits_the_default_record_limit_so_its_own_stream_files_read_back()
    {
        // A flow may hold MaxBytesPerFlow of messages (each counted with its overhead) and two recorded bodies; its
        // tnetstring adds framing per message. The limit leaves that and headers room.
        var store = new WsWeb.Core.Flows.FlowStoreOptions();
        Assert.True(FlowImportOptions.Default.MaxTnetstringLength >= store.MaxBytesPerFlow + (2L * 1024 * 1024) + (32L * 1024 * 1024),
            $"{FlowImportOptions.Default.MaxTnetstringLength} leaves no room beside {store.MaxBytesPerFlow} bytes of messages");
    }
}
