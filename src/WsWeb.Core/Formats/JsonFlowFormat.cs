using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using static WsWeb.Core.Formats.JsonFields;

namespace WsWeb.Core.Formats;

/// <summary>
/// Our own lossless JSON (docs/flow-json-schema.md). Written with <see cref="Utf8JsonWriter"/> and read from a
/// <see cref="JsonDocument"/> by hand rather than through serializer DTOs: the shape is small, bytes need
/// text-or-base64 choices per value, and reading by hand gives every error its exact JSON path.
/// </summary>
internal static class JsonFlowFormat
{
    public const string FormatName = "wsweb-flows";
    public const int Version = 1;

    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,

        // Flows are full of quotes, '<' and non-ASCII text; escaping them all would make files unreadable.
        // The output is a file, never embedded in HTML, so the relaxed encoder is safe here.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Write(IEnumerable<HttpFlow> flows, Stream output)
    {
        using var writer = new Utf8JsonWriter(output, WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("format", FormatName);
        writer.WriteNumber("version", Version);
        writer.WriteStartArray("flows");
        foreach (var flow in flows)
        {
            WriteFlow(writer, flow);
            if (writer.BytesPending > 64 * 1024)
            {
                writer.Flush();
            }
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
    }

    public static FlowImportResult Read(ReadOnlyMemory<byte> data, FlowImportOptions options)
    {
        using var document = Parse(data, options.MaxDepth);
        var root = RequireObject(document.RootElement, "$");
        var format = String(root, "format", "$");
        if (format != FormatName)
        {
            throw Error("$.format", format is null ? $"missing; expected \"{FormatName}\"" : $"\"{format}\" is not \"{FormatName}\"");
        }

        var version = RequiredInt(root, "version", "$");
        if (version != Version)
        {
            throw Error("$.version", $"version {version} is not supported (this build reads version {Version})");
        }

        var flows = new List<HttpFlow>();
        var messages = 0;
        var i = 0;
        foreach (var element in Array(root, "flows", "$").EnumerateArray())
        {
            var flow = ReadFlow(RequireObject(element, Item("$.flows", i)), Item("$.flows", i), options);
            messages += flow.WebSocket?.Messages.Count ?? 0;
            flows.Add(flow);
            i++;
        }

        return new FlowImportResult(flows, messages, 0, FlowFormat.Json, []);
    }

    private static void WriteFlow(Utf8JsonWriter w, HttpFlow flow)
    {
        w.WriteStartObject();
        w.WriteString("id", flow.Id);
        WriteNumber(w, "timestampCreated", flow.TimestampCreated);
        w.WriteString("marked", flow.Marked);
        WriteString(w, "error", flow.Error);
        WriteString(w, "isReplay", flow.IsReplay);
        WriteString(w, "replayOf", flow.ReplayOf);

        var r = flow.Request;
        w.WriteStartObject("request");
        w.WriteString("method", r.Method);
        w.WriteString("scheme", r.Scheme);
        w.WriteString("host", r.Host);
        w.WriteNumber("port", r.Port);
        w.WriteString("path", r.Path);
        w.WriteString("httpVersion", r.HttpVersion);
        WriteHeaders(w, r.Headers);
        WriteBody(w, r.Content, r.ContentLength, r.ContentTruncated);
        WriteNumber(w, "timestampStart", r.TimestampStart);
        WriteNumber(w, "timestampEnd", r.TimestampEnd);
        w.WriteEndObject();

        if (flow.Response is { } s)
        {
            w.WriteStartObject("response");
            w.WriteNumber("statusCode", s.StatusCode);
            w.WriteString("reason", s.Reason);
            w.WriteString("httpVersion", s.HttpVersion);
            WriteHeaders(w, s.Headers);
            WriteBody(w, s.Content, s.ContentLength, s.ContentTruncated);
            WriteNumber(w, "timestampStart", s.TimestampStart);
            WriteNumber(w, "timestampEnd", s.TimestampEnd);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("response");
        }

        w.WritePropertyName("clientConn");
        WriteConnection(w, flow.ClientConn);
        w.WritePropertyName("serverConn");
        WriteConnection(w, flow.ServerConn);

        if (flow.WebSocket is { } ws)
        {
            w.WriteStartObject("webSocket");
            WriteWebSocketSummary(w, ws);
            w.WriteStartArray("messages");
            foreach (var m in ws.Snapshot())
            {
                // Out as it goes: a 256 MiB flow must not sit whole in the writer's buffer.
                if (w.BytesPending > 64 * 1024)
                {
                    w.Flush();
                }

                w.WriteStartObject();
                w.WriteNumber("index", m.Index);
                w.WriteBoolean("fromClient", m.FromClient);
                w.WriteString("type", TypeName(m.Type));
                WritePayload(w, "encoding", "content", m.Content, m.Type == Opcode.Text);
                WriteNumber(w, "timestamp", m.Timestamp);
                w.WriteBoolean("dropped", m.Dropped);
                w.WriteBoolean("injected", m.Injected);
                if (m.OriginalContent is { } original)
                {
                    if (m.OriginalType is { } originalType)
                    {
                        w.WriteString("originalType", TypeName(originalType));
                    }

                    WritePayload(w, "originalEncoding", "originalContent", original, (m.OriginalType ?? m.Type) == Opcode.Text);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("webSocket");
        }

        w.WriteEndObject();
    }

    /// <summary>Close, retention and control-frame counts of a WebSocket; shared with HAR's <c>_wsweb</c>.</summary>
    internal static void WriteWebSocketSummary(Utf8JsonWriter w, WebSocketData ws)
    {
        if (ws.ClosedByClient is { } byClient)
        {
            w.WriteBoolean("closedByClient", byClient);
        }
        else
        {
            w.WriteNull("closedByClient");
        }

        if (ws.CloseCode is { } code)
        {
            w.WriteNumber("closeCode", code);
        }
        else
        {
            w.WriteNull("closeCode");
        }

        WriteString(w, "closeReason", ws.CloseReason);
        WriteNumber(w, "timestampEnd", ws.TimestampEnd);
        w.WriteNumber("trimmedCount", ws.TrimmedCount);
        w.WriteStartObject("pings");
        w.WriteNumber("client", ws.ClientPings);
        w.WriteNumber("server", ws.ServerPings);
        w.WriteEndObject();
        w.WriteStartObject("pongs");
        w.WriteNumber("client", ws.ClientPongs);
        w.WriteNumber("server", ws.ServerPongs);
        w.WriteEndObject();
    }

    /// <summary>Applies what <see cref="WriteWebSocketSummary"/> wrote, except the trimmed count (set before messages).</summary>
    internal static void ReadWebSocketSummary(JsonElement obj, string path, WebSocketData ws)
    {
        ws.ClosedByClient = Bool(obj, "closedByClient", path);
        var closeCode = Int(obj, "closeCode", path);
        if (closeCode is { } code && ImportChecks.CloseCodeProblem(code) is { } codeProblem)
        {
            throw Error(Child(path, "closeCode"), codeProblem);
        }

        ws.CloseCode = (int?)closeCode;
        ws.CloseReason = String(obj, "closeReason", path);
        ws.TimestampEnd = Number(obj, "timestampEnd", path);
        var pings = OptionalObject(obj, "pings", path);
        var pongs = OptionalObject(obj, "pongs", path);
        if (pings is not null || pongs is not null)
        {
            long Count(JsonElement? o, string name, string p) => o is { } e ? Int(e, name, p, 0) ?? 0 : 0;
            ws.SetControlCounts(
                Count(pings, "client", Child(path, "pings")),
                Count(pings, "server", Child(path, "pings")),
                Count(pongs, "client", Child(path, "pongs")),
                Count(pongs, "server", Child(path, "pongs")));
        }
    }

    internal static void WriteConnection(Utf8JsonWriter w, ConnectionInfo c)
    {
        w.WriteStartObject();
        w.WriteString("id", c.Id);
        WriteString(w, "peerName", c.PeerName);
        WriteString(w, "sockName", c.SockName);
        WriteString(w, "address", c.Address);
        w.WriteBoolean("tlsEstablished", c.TlsEstablished);
        WriteString(w, "sni", c.Sni);
        WriteString(w, "tlsVersion", c.TlsVersion);
        WriteString(w, "cipher", c.Cipher);
        WriteString(w, "alpn", c.Alpn);
        WriteString(w, "certificateSubject", c.CertificateSubject);
        w.WriteStartArray("certificateChain");
        foreach (var der in c.CertificateChain)
        {
            w.WriteBase64StringValue(der);
        }

        w.WriteEndArray();
        WriteNumber(w, "timestampStart", c.TimestampStart);
        WriteNumber(w, "timestampTcpSetup", c.TimestampTcpSetup);
        WriteNumber(w, "timestampTlsSetup", c.TimestampTlsSetup);
        WriteNumber(w, "timestampEnd", c.TimestampEnd);
        WriteString(w, "error", c.Error);
        w.WriteEndObject();
    }

    internal static ConnectionInfo ReadConnection(JsonElement? element, string path)
    {
        var c = new ConnectionInfo();
        if (element is not { } o)
        {
            return c;
        }

        RequireObject(o, path);
        c.Id = String(o, "id", path) ?? c.Id;
        c.PeerName = String(o, "peerName", path);
        c.SockName = String(o, "sockName", path);
        c.Address = String(o, "address", path);
        c.TlsEstablished = Bool(o, "tlsEstablished", path) ?? false;
        c.Sni = String(o, "sni", path);
        c.TlsVersion = String(o, "tlsVersion", path);
        c.Cipher = String(o, "cipher", path);
        c.Alpn = String(o, "alpn", path);
        c.CertificateSubject = String(o, "certificateSubject", path);
        if (OptionalArray(o, "certificateChain", path) is { } chain)
        {
            var certificates = new List<byte[]>();
            var i = 0;
            foreach (var item in chain.EnumerateArray())
            {
                var itemPath = Item(Child(path, "certificateChain"), i++);
                certificates.Add(item.ValueKind == JsonValueKind.String ? Base64(Text(item, itemPath), itemPath) : throw WrongType(itemPath, item, "a base64 string"));
            }

            c.CertificateChain = certificates;
        }

        c.TimestampStart = Number(o, "timestampStart", path);
        c.TimestampTcpSetup = Number(o, "timestampTcpSetup", path);
        c.TimestampTlsSetup = Number(o, "timestampTlsSetup", path);
        c.TimestampEnd = Number(o, "timestampEnd", path);
        c.Error = String(o, "error", path);
        return c;
    }

    internal static string TypeName(Opcode type) => type == Opcode.Text ? "text" : "binary";

    internal static Opcode ParseType(JsonElement obj, string name, string path) => RequiredString(obj, name, path) switch
    {
        "text" => Opcode.Text,
        "binary" => Opcode.Binary,
        var other => throw Error(Child(path, name), $"\"{other}\" is neither \"text\" nor \"binary\""),
    };

    /// <summary>Writes bytes as text when they are valid UTF-8 and <paramref name="preferText"/>, else as base64.</summary>
    internal static void WritePayload(Utf8JsonWriter w, string encodingName, string dataName, byte[] content, bool preferText)
    {
        if (preferText && FlowText.IsValidUtf8(content))
        {
            w.WriteString(encodingName, "text");
            w.WriteString(dataName, Encoding.UTF8.GetString(content));
        }
        else
        {
            w.WriteString(encodingName, "base64");
            w.WriteBase64String(dataName, content);
        }
    }

    internal static byte[]? ReadPayload(JsonElement obj, string encodingName, string dataName, string path)
    {
        var data = String(obj, dataName, path);
        if (data is null)
        {
            return null;
        }

        return (String(obj, encodingName, path) ?? "text") switch
        {
            "text" => Encoding.UTF8.GetBytes(data),
            "base64" => Base64(data, Child(path, dataName)),
            var other => throw Error(Child(path, encodingName), $"\"{other}\" is neither \"text\" nor \"base64\""),
        };
    }

    private static void WriteHeaders(Utf8JsonWriter w, HeaderList headers)
    {
        w.WriteStartArray("headers");
        foreach (var (name, value) in headers)
        {
            w.WriteStartArray();
            w.WriteStringValue(name);
            w.WriteStringValue(value);
            w.WriteEndArray();
        }

        w.WriteEndArray();
    }

    private static HeaderList ReadHeaders(JsonElement obj, string path)
    {
        var headers = new HeaderList();
        if (OptionalArray(obj, "headers", path) is not { } array)
        {
            return headers;
        }

        var i = 0;
        foreach (var pair in array.EnumerateArray())
        {
            var p = Item(Child(path, "headers"), i++);
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2
                || pair[0].ValueKind != JsonValueKind.String || pair[1].ValueKind != JsonValueKind.String)
            {
                throw Error(p, "expected a [name, value] pair of strings");
            }

            headers.Add(Text(pair[0], Item(p, 0)), Text(pair[1], Item(p, 1)));
        }

        return headers;
    }

    private static void WriteBody(Utf8JsonWriter w, byte[]? content, long length, bool truncated)
    {
        if (content is null)
        {
            w.WriteNull("contentEncoding");
            w.WriteNull("content");
        }
        else
        {
            WritePayload(w, "contentEncoding", "content", content, preferText: true);
        }

        w.WriteNumber("contentLength", length);
        w.WriteBoolean("contentTruncated", truncated);
    }

    private static HttpFlow ReadFlow(JsonElement o, string path, FlowImportOptions options)
    {
        var requestPath = Child(path, "request");
        var ro = Object(o, "request", path);
        var request = new HttpRequestData
        {
            Method = RequiredString(ro, "method", requestPath),
            Scheme = RequiredString(ro, "scheme", requestPath),
            Host = RequiredString(ro, "host", requestPath),
            Port = (int)RequiredInt(ro, "port", requestPath, 0, 65535),
            Path = RequiredString(ro, "path", requestPath),
            HttpVersion = String(ro, "httpVersion", requestPath) ?? "HTTP/1.1",
            Headers = ReadHeaders(ro, requestPath),
            Content = ReadPayload(ro, "contentEncoding", "content", requestPath),
            TimestampStart = Number(ro, "timestampStart", requestPath) ?? 0,
            TimestampEnd = Number(ro, "timestampEnd", requestPath),
        };
        request.ContentLength = Int(ro, "contentLength", requestPath, 0) ?? request.Content?.Length ?? 0;
        request.ContentTruncated = Bool(ro, "contentTruncated", requestPath) ?? false;

        var flow = new HttpFlow(request, Number(o, "timestampCreated", path) ?? request.TimestampStart)
        {
            Id = ReadId(o, path),
            ClientConn = ReadConnection(Get(o, "clientConn"), Child(path, "clientConn")),
            ServerConn = ReadConnection(Get(o, "serverConn"), Child(path, "serverConn")),
            IsImported = true,
            IsReplay = ReadIsReplay(o, path),
            ReplayOf = ReadReplayOf(o, path),
        };
        flow.IsLive = false;
        flow.Marked = String(o, "marked", path) ?? "";
        flow.Error = String(o, "error", path);

        if (OptionalObject(o, "response", path) is { } so)
        {
            var responsePath = Child(path, "response");
            var response = new HttpResponseData
            {
                StatusCode = (int)RequiredInt(so, "statusCode", responsePath, 0, 999),
                Reason = String(so, "reason", responsePath) ?? "",
                HttpVersion = String(so, "httpVersion", responsePath) ?? "HTTP/1.1",
                Headers = ReadHeaders(so, responsePath),
                Content = ReadPayload(so, "contentEncoding", "content", responsePath),
                TimestampStart = Number(so, "timestampStart", responsePath) ?? 0,
                TimestampEnd = Number(so, "timestampEnd", responsePath),
            };
            response.ContentLength = Int(so, "contentLength", responsePath, 0) ?? response.Content?.Length ?? 0;
            response.ContentTruncated = Bool(so, "contentTruncated", responsePath) ?? false;
            flow.Response = response;
        }

        if (OptionalObject(o, "webSocket", path) is { } wo)
        {
            flow.WebSocket = ReadWebSocket(wo, Child(path, "webSocket"), options);
        }

        return flow;
    }

    /// <summary>The flow's id, or a new one when the file has none; an id the REST routes cannot address is refused.</summary>
    internal static string ReadId(JsonElement o, string path)
    {
        if (String(o, "id", path) is not { } id)
        {
            return Guid.NewGuid().ToString();
        }

        return ImportChecks.IdProblem(id) is { } problem ? throw Error(Child(path, "id"), problem) : id;
    }

    /// <summary>mitmproxy's <c>is_replay</c>: "request", "response" or null; other text is refused.</summary>
    internal static string? ReadIsReplay(JsonElement o, string path)
    {
        var isReplay = String(o, "isReplay", path);
        return isReplay is not null && ImportChecks.ReplayProblem(isReplay) is { } problem ? throw Error(Child(path, "isReplay"), problem) : isReplay;
    }

    /// <summary>The id of the flow a replay repeated; one the REST routes cannot address is refused, as it would be a dead link.</summary>
    internal static string? ReadReplayOf(JsonElement o, string path)
    {
        var id = String(o, "replayOf", path);
        return id is not null && ImportChecks.IdProblem(id) is { } problem ? throw Error(Child(path, "replayOf"), problem) : id;
    }

    /// <summary>Reads a trimmed count, refusing one that would put message indices past what the dashboard can hold.</summary>
    internal static long ReadTrimmedCount(JsonElement obj, string name, string path)
    {
        var trimmed = Int(obj, name, path) ?? 0;
        return ImportChecks.TrimmedCountProblem(trimmed) is { } problem ? throw Error(Child(path, name), problem) : trimmed;
    }

    /// <summary>Refuses a flow whose last message index runs past <see cref="ImportChecks.MaxIndex"/>.</summary>
    internal static void CheckLastIndex(WebSocketData ws, long trimmed, string trimmedPath)
    {
        if (ImportChecks.LastIndexProblem(trimmed, ws.TotalCount) is { } problem)
        {
            throw Error(trimmedPath, problem);
        }
    }

    private static WebSocketData ReadWebSocket(JsonElement wo, string path, FlowImportOptions options)
    {
        var ws = new WebSocketData(options.MaxMessagesPerFlow, options.MaxBytesPerFlow);
        var messages = Array(wo, "messages", path);
        var trimmed = 0L;
        var trimmedPath = Child(path, "trimmedCount");
        if (Get(wo, "trimmedCount") is not null)
        {
            trimmed = ReadTrimmedCount(wo, "trimmedCount", path);
        }
        else if (messages.GetArrayLength() > 0 && messages[0].ValueKind == JsonValueKind.Object)
        {
            // Files written by hand may give the first message's index instead of a trimmed count.
            var first = Item(Child(path, "messages"), 0);
            trimmed = ReadTrimmedCount(messages[0], "index", first);
            trimmedPath = Child(first, "index");
        }

        ws.SetTrimmedCount(trimmed);
        var i = 0;
        foreach (var item in messages.EnumerateArray())
        {
            var p = Item(Child(path, "messages"), i++);
            var mo = RequireObject(item, p);
            var type = ParseType(mo, "type", p);
            var message = new WebSocketMessage(
                type,
                RequiredBool(mo, "fromClient", p),
                ReadPayload(mo, "encoding", "content", p) ?? throw Error(Child(p, "content"), "missing"),
                RequiredNumber(mo, "timestamp", p),
                Bool(mo, "dropped", p) ?? false,
                Bool(mo, "injected", p) ?? false);
            if (ReadPayload(mo, "originalEncoding", "originalContent", p) is { } original)
            {
                message.SetOriginal(original, Get(mo, "originalType") is null ? null : ParseType(mo, "originalType", p));
            }

            ws.Add(message);
        }

        CheckLastIndex(ws, trimmed, trimmedPath);
        ReadWebSocketSummary(wo, path, ws);
        return ws;
    }
}
