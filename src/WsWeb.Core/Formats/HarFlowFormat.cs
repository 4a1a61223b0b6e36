using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using static WsWeb.Core.Formats.JsonFields;

namespace WsWeb.Core.Formats;

/// <summary>
/// HAR 1.2 with the WebSocket extension Chrome DevTools and mitmproxy (≥ 10.1) write: <c>_resourceType:
/// "websocket"</c> and <c>_webSocketMessages: [{type, time, opcode, data}]</c>.
/// </summary>
/// <remarks>
/// HAR has no place for close codes, dropped/injected flags, edits, ping counts, exact timestamps, replays or
/// connection details, so each entry and each message carries a <c>_wsweb</c> object with them; other tools
/// ignore underscore fields, and our import restores them exactly. Without <c>_wsweb</c> (Chrome, mitmproxy)
/// the import rebuilds what the standard fields say: timings give the request and response times, and
/// opcodes other than 1 and 2 are left out.
/// </remarks>
internal static partial class HarFlowFormat
{
    public static void Write(IEnumerable<HttpFlow> flows, Stream output)
    {
        using var w = new Utf8JsonWriter(output, JsonFlowFormat.WriterOptions);
        w.WriteStartObject();
        w.WriteStartObject("log");
        w.WriteString("version", "1.2");
        w.WriteStartObject("creator");
        w.WriteString("name", "WsWeb");
        w.WriteString("version", typeof(HarFlowFormat).Assembly.GetName().Version?.ToString(3) ?? "1.0.0");
        w.WriteEndObject();
        w.WriteStartArray("pages");
        w.WriteEndArray();
        w.WriteStartArray("entries");
        foreach (var flow in flows)
        {
            WriteEntry(w, flow);
            if (w.BytesPending > 64 * 1024)
            {
                w.Flush();
            }
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
    }

    public static FlowImportResult Read(ReadOnlyMemory<byte> data, FlowImportOptions options)
    {
        using var document = Parse(data, options.MaxDepth);
        var root = RequireObject(document.RootElement, "$");
        var log = Object(root, "log", "$");
        var entries = Array(log, "entries", "$.log");
        var flows = new List<HttpFlow>();
        var messages = 0;
        var ignoredFrames = 0;
        var i = 0;
        foreach (var element in entries.EnumerateArray())
        {
            var path = Item("$.log.entries", i++);
            var flow = ReadEntry(RequireObject(element, path), path, options, ref ignoredFrames);
            messages += flow.WebSocket?.Messages.Count ?? 0;
            flows.Add(flow);
        }

        List<string> warnings = ignoredFrames > 0
            ? [$"left out {ignoredFrames} WebSocket frame{(ignoredFrames == 1 ? "" : "s")} with opcodes other than 1 (text) and 2 (binary)"]
            : [];
        return new FlowImportResult(flows, messages, 0, FlowFormat.Har, warnings);
    }

    private static void WriteEntry(Utf8JsonWriter w, HttpFlow flow)
    {
        var r = flow.Request;
        var s = flow.Response;
        var ws = flow.WebSocket;
        var server = flow.ServerConn;

        // Durations in milliseconds as HAR wants them; -1 where the phase did not happen or is unknown. The server
        // connection is opened once the request has arrived, so its setup is part of the request's time; on a
        // reused connection (opened before this request) there was none. HAR counts ssl inside connect.
        var opened = server.TimestampStart is { } st && st >= r.TimestampStart;
        var connect = opened && (server.TimestampTlsSetup ?? server.TimestampTcpSetup) is { } ready ? Ms(ready - server.TimestampStart!.Value) : -1;
        var ssl = opened && server.TimestampTlsSetup is { } tls && server.TimestampTcpSetup is { } tcp ? Ms(tls - tcp) : -1;
        var send = r.TimestampEnd is { } reqEnd ? Math.Max(0, Ms(reqEnd - r.TimestampStart) - Math.Max(0, connect)) : 0;
        var wait = s is not null && r.TimestampEnd is { } reqEnd2 ? Ms(s.TimestampStart - reqEnd2) : 0;
        var receive = s?.TimestampEnd is { } resEnd ? Ms(resEnd - s.TimestampStart) : 0;

        w.WriteStartObject();
        w.WriteString("startedDateTime", IsoDate(r.TimestampStart));
        w.WriteNumber("time", Math.Max(0, connect) + send + wait + receive);

        w.WriteStartObject("request");
        w.WriteString("method", r.Method);
        w.WriteString("url", ws is null ? r.Url : r.WebSocketUrl);
        w.WriteString("httpVersion", r.HttpVersion);
        WriteCookies(w, r.Headers.GetJoined("Cookie"));
        WriteNameValues(w, "headers", r.Headers);
        WriteNameValues(w, "queryString", ParseQuery(r.Path));
        if (r.Content is { Length: > 0 } body)
        {
            w.WriteStartObject("postData");
            w.WriteString("mimeType", r.Headers["Content-Type"] ?? "");
            WriteHarText(w, Decoded(r.Headers, body, r.ContentTruncated));
            w.WriteEndObject();
        }

        w.WriteNumber("headersSize", -1);
        w.WriteNumber("bodySize", r.Content is null ? 0 : r.ContentLength);
        w.WriteEndObject();

        w.WriteStartObject("response");
        if (s is not null)
        {
            w.WriteNumber("status", s.StatusCode);
            w.WriteString("statusText", s.Reason);
            w.WriteString("httpVersion", s.HttpVersion);
            WriteSetCookies(w, s.Headers);
            WriteNameValues(w, "headers", s.Headers);
            // HAR holds bodies decoded: size is the decoded length, bodySize what crossed the wire, and
            // compression the difference (as browsers and mitmproxy write it).
            w.WriteStartObject("content");
            var decoded = s.Content is { Length: > 0 } raw ? Decoded(s.Headers, raw, s.ContentTruncated) : null;
            if (decoded is not null && !ReferenceEquals(decoded, s.Content))
            {
                w.WriteNumber("size", decoded.Length);
                w.WriteNumber("compression", decoded.Length - s.Content!.Length);
            }
            else
            {
                w.WriteNumber("size", s.ContentLength);
            }

            w.WriteString("mimeType", s.Headers["Content-Type"] ?? "");
            if (decoded is not null)
            {
                WriteHarText(w, decoded);
            }

            w.WriteEndObject();
            w.WriteString("redirectURL", s.Headers["Location"] ?? "");
            w.WriteNumber("headersSize", -1);
            w.WriteNumber("bodySize", s.Content is null ? 0 : s.ContentLength);
        }
        else
        {
            // No response (refused, failed): HAR still requires the object; status 0 as browsers write it.
            w.WriteNumber("status", 0);
            w.WriteString("statusText", "");
            w.WriteString("httpVersion", "");
            w.WriteStartArray("cookies");
            w.WriteEndArray();
            w.WriteStartArray("headers");
            w.WriteEndArray();
            w.WriteStartObject("content");
            w.WriteNumber("size", 0);
            w.WriteString("mimeType", "");
            w.WriteEndObject();
            w.WriteString("redirectURL", "");
            w.WriteNumber("headersSize", -1);
            w.WriteNumber("bodySize", -1);
            WriteString(w, "_error", flow.Error);
        }

        w.WriteEndObject();

        w.WriteStartObject("cache");
        w.WriteEndObject();
        w.WriteStartObject("timings");
        w.WriteNumber("blocked", -1);
        w.WriteNumber("dns", -1);
        w.WriteNumber("connect", connect);
        w.WriteNumber("ssl", ssl);
        w.WriteNumber("send", send);
        w.WriteNumber("wait", wait);
        w.WriteNumber("receive", receive);
        w.WriteEndObject();

        if (FlowText.SplitHostPort(server.PeerName) is var (ip, _))
        {
            w.WriteString("serverIPAddress", ip);
        }

        if (ws is not null)
        {
            w.WriteString("_resourceType", "websocket");
            w.WriteStartArray("_webSocketMessages");
            foreach (var m in ws.Snapshot())
            {
                // Out as it goes: a 256 MiB flow must not sit whole in the writer's buffer.
                if (w.BytesPending > 64 * 1024)
                {
                    w.Flush();
                }

                WriteMessage(w, m);
            }

            w.WriteEndArray();
        }

        w.WriteStartObject("_wsweb");
        w.WriteString("id", flow.Id);
        WriteNumber(w, "timestampCreated", flow.TimestampCreated);
        w.WriteString("marked", flow.Marked);
        WriteString(w, "error", flow.Error);
        WriteString(w, "isReplay", flow.IsReplay);
        WriteString(w, "replayOf", flow.ReplayOf);
        w.WriteStartObject("request");
        w.WriteString("scheme", r.Scheme);
        w.WriteString("host", r.Host);
        w.WriteNumber("port", r.Port);
        w.WriteString("path", r.Path);
        WriteNumber(w, "timestampStart", r.TimestampStart);
        WriteNumber(w, "timestampEnd", r.TimestampEnd);
        w.WriteBoolean("hasContent", r.Content is not null);
        w.WriteNumber("contentLength", r.ContentLength);
        w.WriteBoolean("contentTruncated", r.ContentTruncated);
        w.WriteEndObject();
        if (s is not null)
        {
            w.WriteStartObject("response");
            WriteNumber(w, "timestampStart", s.TimestampStart);
            WriteNumber(w, "timestampEnd", s.TimestampEnd);
            w.WriteBoolean("hasContent", s.Content is not null);
            w.WriteNumber("contentLength", s.ContentLength);
            w.WriteBoolean("contentTruncated", s.ContentTruncated);
            w.WriteEndObject();
        }

        w.WritePropertyName("clientConn");
        JsonFlowFormat.WriteConnection(w, flow.ClientConn);
        w.WritePropertyName("serverConn");
        JsonFlowFormat.WriteConnection(w, server);
        if (ws is not null)
        {
            w.WriteStartObject("webSocket");
            JsonFlowFormat.WriteWebSocketSummary(w, ws);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteMessage(Utf8JsonWriter w, WebSocketMessage m)
    {
        var isText = m.Type == Opcode.Text;
        var validText = isText && FlowText.IsValidUtf8(m.Content);
        w.WriteStartObject();
        w.WriteString("type", m.FromClient ? "send" : "receive");
        WriteNumber(w, "time", m.Timestamp);
        w.WriteNumber("opcode", (int)m.Type);
        if (isText)
        {
            // Invalid UTF-8 in a text message (possible after an edit) still goes out as text for other
            // tools; the exact bytes travel in _wsweb.
            w.WriteString("data", Encoding.UTF8.GetString(m.Content));
        }
        else
        {
            w.WriteBase64String("data", m.Content);
        }

        w.WriteStartObject("_wsweb");
        w.WriteNumber("index", m.Index);
        w.WriteBoolean("dropped", m.Dropped);
        w.WriteBoolean("injected", m.Injected);
        if (isText && !validText)
        {
            w.WriteBase64String("contentBase64", m.Content);
        }

        if (m.OriginalContent is { } original)
        {
            if (m.OriginalType is { } originalType)
            {
                w.WriteString("originalType", JsonFlowFormat.TypeName(originalType));
            }

            JsonFlowFormat.WritePayload(w, "originalEncoding", "originalContent", original, (m.OriginalType ?? m.Type) == Opcode.Text);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static HttpFlow ReadEntry(JsonElement e, string path, FlowImportOptions options, ref int ignoredFrames)
    {
        var extras = OptionalObject(e, "_wsweb", path);
        var extrasPath = Child(path, "_wsweb");
        var requestPath = Child(path, "request");
        var ro = Object(e, "request", path);
        var url = RequiredString(ro, "url", requestPath);
        var (scheme, host, port, target) = SplitUrl(url, Child(requestPath, "url"));
        var started = ParseDate(RequiredString(e, "startedDateTime", path), Child(path, "startedDateTime"));
        var timings = OptionalObject(e, "timings", path);
        double Timing(string name) => timings is { } t && Number(t, name, Child(path, "timings")) is { } v && v > 0 ? v / 1000 : 0;

        var request = new HttpRequestData
        {
            Method = RequiredString(ro, "method", requestPath),
            Scheme = scheme,
            Host = host,
            Port = port,
            Path = target,
            HttpVersion = String(ro, "httpVersion", requestPath) is { Length: > 0 } v ? v : "HTTP/1.1",
            Headers = ReadNameValues(ro, "headers", requestPath),
            TimestampStart = started,
            // startedDateTime is when the request began; blocked, dns and connect (ssl included) come before send.
            TimestampEnd = started + Timing("blocked") + Timing("dns") + Timing("connect") + Timing("send"),
        };
        if (OptionalObject(ro, "postData", requestPath) is { } postData)
        {
            var postPath = Child(requestPath, "postData");
            request.Content = ReadHarText(postData, postPath) ?? ReadPostParams(postData, postPath);
            request.Content = request.Content is { } posted ? ContentEncodings.EncodeUnlessEncoded(request.Headers["Content-Encoding"], posted) : null;
        }

        var re = extras is { } x0 ? OptionalObject(x0, "request", extrasPath) : null;
        var rePath = Child(extrasPath, "request");
        request.ContentLength = request.Content?.Length ?? 0;
        if (re is { } rx)
        {
            request.Scheme = String(rx, "scheme", rePath) ?? request.Scheme;
            request.Host = String(rx, "host", rePath) ?? request.Host;
            request.Port = (int?)Int(rx, "port", rePath, 0, 65535) ?? request.Port;
            request.Path = String(rx, "path", rePath) ?? request.Path;
            request.TimestampStart = Number(rx, "timestampStart", rePath) ?? request.TimestampStart;
            request.TimestampEnd = Get(rx, "timestampEnd") is null ? null : Number(rx, "timestampEnd", rePath);
            request.Content = Bool(rx, "hasContent", rePath) == true ? request.Content ?? [] : request.Content;
            request.ContentLength = Int(rx, "contentLength", rePath, 0) ?? request.ContentLength;
            request.ContentTruncated = Bool(rx, "contentTruncated", rePath) ?? false;
        }

        var flow = new HttpFlow(request, extras is { } x1 ? Number(x1, "timestampCreated", extrasPath) ?? started : started)
        {
            Id = extras is { } x2 ? JsonFlowFormat.ReadId(x2, extrasPath) : Guid.NewGuid().ToString(),
            ClientConn = JsonFlowFormat.ReadConnection(extras is { } x3 ? Get(x3, "clientConn") : null, Child(extrasPath, "clientConn")),
            ServerConn = JsonFlowFormat.ReadConnection(extras is { } x4 ? Get(x4, "serverConn") : null, Child(extrasPath, "serverConn")),
            IsImported = true,
            IsReplay = extras is { } x5 ? JsonFlowFormat.ReadIsReplay(x5, extrasPath) : null,
            ReplayOf = extras is { } x6 ? JsonFlowFormat.ReadReplayOf(x6, extrasPath) : null,
        };
        flow.IsLive = false;
        if (extras is { } x7)
        {
            flow.Marked = String(x7, "marked", extrasPath) ?? "";
            flow.Error = String(x7, "error", extrasPath);
        }
        else if (String(e, "serverIPAddress", path) is { Length: > 0 } ip)
        {
            flow.ServerConn.PeerName = FlowText.JoinHostPort(ip.Trim('[', ']'), port);
        }

        var responsePath = Child(path, "response");
        var so = OptionalObject(e, "response", path);
        var status = so is { } s0 ? Int(s0, "status", responsePath, 0, 999) ?? 0 : 0;
        if (so is { } s && status > 0)
        {
            var response = new HttpResponseData
            {
                StatusCode = (int)status,
                Reason = String(s, "statusText", responsePath) ?? "",
                HttpVersion = String(s, "httpVersion", responsePath) is { Length: > 0 } hv ? hv : request.HttpVersion,
                Headers = ReadNameValues(s, "headers", responsePath),
                Content = OptionalObject(s, "content", responsePath) is { } content ? ReadHarText(content, Child(responsePath, "content")) : null,
                TimestampStart = (request.TimestampEnd ?? started) + Timing("wait"),
            };
            response.TimestampEnd = response.TimestampStart + Timing("receive");

            // The model keeps bodies as they crossed the wire; HAR holds them decoded.
            response.Content = response.Content is { } body ? ContentEncodings.EncodeUnlessEncoded(response.Headers["Content-Encoding"], body) : null;
            response.ContentLength = response.Content?.Length ?? 0;
            if (extras is { } x8 && OptionalObject(x8, "response", extrasPath) is { } sx)
            {
                var sxPath = Child(extrasPath, "response");
                response.TimestampStart = Number(sx, "timestampStart", sxPath) ?? response.TimestampStart;
                response.TimestampEnd = Get(sx, "timestampEnd") is null ? null : Number(sx, "timestampEnd", sxPath);
                response.Content = Bool(sx, "hasContent", sxPath) == true ? response.Content ?? [] : response.Content;
                response.ContentLength = Int(sx, "contentLength", sxPath, 0) ?? response.ContentLength;
                response.ContentTruncated = Bool(sx, "contentTruncated", sxPath) ?? false;
            }

            flow.Response = response;
        }
        else if (extras is null && so is { } failed)
        {
            flow.Error = String(failed, "_error", responsePath);
        }

        // _resourceType "websocket" only says the page asked for one: Chrome writes it for a refused or failed
        // upgrade too (status 0 and an _error). ~websocket means the upgrade succeeded, so only a 101, frames
        // or our own WebSocket summary make it one; a failed attempt stays an HTTP flow with its error.
        var frames = OptionalArray(e, "_webSocketMessages", path);
        if (status == 101
            || frames is { } sent && sent.GetArrayLength() > 0
            || extras is { } x9 && OptionalObject(x9, "webSocket", extrasPath) is not null)
        {
            flow.WebSocket = ReadWebSocket(frames, extras, path, options, ref ignoredFrames);
        }

        return flow;
    }

    private static WebSocketData ReadWebSocket(JsonElement? frames, JsonElement? extras, string path, FlowImportOptions options, ref int ignoredFrames)
    {
        var ws = new WebSocketData(options.MaxMessagesPerFlow, options.MaxBytesPerFlow);
        var summaryPath = Child(Child(path, "_wsweb"), "webSocket");
        var summary = extras is { } x ? OptionalObject(x, "webSocket", Child(path, "_wsweb")) : null;
        var trimmed = summary is { } s0 ? JsonFlowFormat.ReadTrimmedCount(s0, "trimmedCount", summaryPath) : 0;
        ws.SetTrimmedCount(trimmed);
        if (frames is { } array)
        {
            var i = 0;
            foreach (var frame in array.EnumerateArray())
            {
                var p = Item(Child(path, "_webSocketMessages"), i++);
                var fo = RequireObject(frame, p);
                var opcode = RequiredInt(fo, "opcode", p);
                if (opcode is not ((long)Opcode.Text or (long)Opcode.Binary))
                {
                    ignoredFrames++;
                    continue;
                }

                var fromClient = RequiredString(fo, "type", p) switch
                {
                    "send" => true,
                    "receive" => false,
                    var other => throw Error(Child(p, "type"), $"\"{other}\" is neither \"send\" nor \"receive\""),
                };
                var data = RequiredString(fo, "data", p);
                var mx = OptionalObject(fo, "_wsweb", p);
                var mxPath = Child(p, "_wsweb");
                var content = mx is { } m0 && String(m0, "contentBase64", mxPath) is { } exact
                    ? Base64(exact, Child(mxPath, "contentBase64"))
                    : opcode == (long)Opcode.Text ? Encoding.UTF8.GetBytes(data) : Base64(data, Child(p, "data"));
                var message = new WebSocketMessage(
                    (Opcode)opcode,
                    fromClient,
                    content,
                    RequiredNumber(fo, "time", p),
                    mx is { } m1 && (Bool(m1, "dropped", mxPath) ?? false),
                    mx is { } m2 && (Bool(m2, "injected", mxPath) ?? false));
                if (mx is { } m3 && JsonFlowFormat.ReadPayload(m3, "originalEncoding", "originalContent", mxPath) is { } original)
                {
                    message.SetOriginal(original, Get(m3, "originalType") is null ? null : JsonFlowFormat.ParseType(m3, "originalType", mxPath));
                }

                ws.Add(message);
            }
        }

        JsonFlowFormat.CheckLastIndex(ws, trimmed, Child(summaryPath, "trimmedCount"));
        if (summary is { } s1)
        {
            JsonFlowFormat.ReadWebSocketSummary(s1, summaryPath, ws);
        }

        return ws;
    }

    private static double Ms(double seconds) => Math.Max(0, Math.Round(seconds * 1000, 3));

    private static string IsoDate(double timestamp) =>
        Timestamps.ToDateTimeOffset(timestamp).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// An ISO 8601 date-time as HAR writers produce it: Chrome <c>2024-01-01T12:00:00.123Z</c>, mitmproxy
    /// <c>2024-01-01T12:00:00.123456+00:00</c>; a space may stand for the T, fractions may have up to 9 digits,
    /// and no offset means UTC. Anything looser is refused: a culture-aware parse read "12:00" as today and
    /// "01/02/2024" month first.
    /// </summary>
    private static double ParseDate(string value, string path)
    {
        var m = IsoDateTime().Match(value);
        if (!m.Success)
        {
            throw Error(path, $"\"{value}\" is not an ISO 8601 date-time such as 2024-01-01T12:00:00.123Z");
        }

        static int Int(Group g) => g.Success ? int.Parse(g.ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture) : 0;
        DateTimeOffset date;
        try
        {
            var offset = TimeSpan.Zero;
            if (m.Groups["zone"].Value is ['+' or '-', ..] zone)
            {
                offset = new TimeSpan(Int(m.Groups["zh"]), Int(m.Groups["zm"]), 0);
                offset = zone[0] == '-' ? -offset : offset;
            }

            // Ticks hold 7 fraction digits; the 8th and 9th are below what a timestamp keeps anyway.
            var fraction = m.Groups["f"].Value;
            var ticks = fraction.Length == 0 ? 0 : long.Parse(fraction.PadRight(7, '0')[..7], NumberStyles.None, CultureInfo.InvariantCulture);
            date = new DateTimeOffset(Int(m.Groups["y"]), Int(m.Groups["mo"]), Int(m.Groups["d"]), Int(m.Groups["h"]), Int(m.Groups["mi"]), Int(m.Groups["s"]), offset).AddTicks(ticks);
        }
        catch (ArgumentOutOfRangeException)
        {
            // Month 13, hour 24, February 30th, an offset past ±14:00.
            throw Error(path, $"\"{value}\" is not a valid date-time");
        }

        var timestamp = Timestamps.FromDateTimeOffset(date);
        return ImportChecks.TimestampProblem(timestamp) is { } problem ? throw Error(path, problem) : timestamp;
    }

    [GeneratedRegex(@"^(?<y>[0-9]{4})-(?<mo>[0-9]{2})-(?<d>[0-9]{2})[Tt ](?<h>[0-9]{2}):(?<mi>[0-9]{2})(?::(?<s>[0-9]{2})(?:[.,](?<f>[0-9]{1,9}))?)?(?<zone>[Zz]|[+-](?<zh>[0-9]{2})(?::?(?<zm>[0-9]{2}))?)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex IsoDateTime();

    /// <summary>A body with its Content-Encoding undone; a truncated one cannot be, and stays as it was recorded.</summary>
    private static byte[] Decoded(HeaderList headers, byte[] content, bool truncated) =>
        truncated ? content : ContentEncodings.DecodeOrRaw(headers["Content-Encoding"], content);

    private static void WriteHarText(Utf8JsonWriter w, byte[] content)
    {
        if (FlowText.IsValidUtf8(content))
        {
            w.WriteString("text", Encoding.UTF8.GetString(content));
        }
        else
        {
            w.WriteBase64String("text", content);
            w.WriteString("encoding", "base64");
        }
    }

    private static byte[]? ReadHarText(JsonElement obj, string path)
    {
        var text = String(obj, "text", path);
        if (text is null)
        {
            return null;
        }

        return String(obj, "encoding", path) switch
        {
            null or "" => Encoding.UTF8.GetBytes(text),
            "base64" => Base64(text, Child(path, "text")),
            var other => throw Error(Child(path, "encoding"), $"\"{other}\" is not supported (only base64)"),
        };
    }

    /// <summary>
    /// A form body given only as <c>params</c> (HAR 1.2 allows them instead of <c>text</c>): the
    /// application/x-www-form-urlencoded body they stand for. Uploaded files' contents are not in a HAR.
    /// </summary>
    private static byte[]? ReadPostParams(JsonElement postData, string path)
    {
        // Only a urlencoded form can be rebuilt from its params: a multipart one needs its boundary and files.
        var mimeType = String(postData, "mimeType", path) ?? "";
        if (OptionalArray(postData, "params", path) is not { } items
            || !(mimeType.Length == 0 || mimeType.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        var pairs = new List<string>();
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            var itemPath = Item(Child(path, "params"), index++);
            var o = RequireObject(item, itemPath);
            pairs.Add($"{Uri.EscapeDataString(RequiredString(o, "name", itemPath))}={Uri.EscapeDataString(String(o, "value", itemPath) ?? "")}");
        }

        return Encoding.UTF8.GetBytes(string.Join('&', pairs));
    }

    /// <summary>HAR's response cookies: each Set-Cookie header as name, value and its attributes.</summary>
    private static void WriteSetCookies(Utf8JsonWriter w, HeaderList headers)
    {
        w.WriteStartArray("cookies");
        foreach (var (name, value) in headers)
        {
            if (!name.Equals("Set-Cookie", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var parts = value.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0)
            {
                continue;
            }

            w.WriteStartObject();
            WriteCookiePair(w, parts[0]);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var attribute in parts.Skip(1))
            {
                var split = attribute.IndexOf('=', StringComparison.Ordinal);
                var key = (split < 0 ? attribute : attribute[..split].Trim()).ToUpperInvariant();
                var attributeValue = split < 0 ? "" : attribute[(split + 1)..].Trim();
                if (!seen.Add(key))
                {
                    continue;   // a repeated attribute: the first counts, and a JSON object has each key once
                }

                switch (key)
                {
                    case "PATH":
                        w.WriteString("path", attributeValue);
                        break;
                    case "DOMAIN":
                        w.WriteString("domain", attributeValue);
                        break;
                    case "EXPIRES" when DateTimeOffset.TryParse(attributeValue, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expires):
                        w.WriteString("expires", expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
                        break;
                    case "HTTPONLY":
                        w.WriteBoolean("httpOnly", true);
                        break;
                    case "SECURE":
                        w.WriteBoolean("secure", true);
                        break;
                }
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteNameValues(Utf8JsonWriter w, string name, IEnumerable<KeyValuePair<string, string>> pairs)
    {
        w.WriteStartArray(name);
        foreach (var (key, value) in pairs)
        {
            w.WriteStartObject();
            w.WriteString("name", key);
            w.WriteString("value", value);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static HeaderList ReadNameValues(JsonElement obj, string name, string path)
    {
        var list = new HeaderList();
        if (OptionalArray(obj, name, path) is not { } array)
        {
            return list;
        }

        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var p = Item(Child(path, name), i++);
            var o = RequireObject(item, p);
            list.Add(RequiredString(o, "name", p), String(o, "value", p) ?? "");
        }

        return list;
    }

    private static void WriteCookies(Utf8JsonWriter w, string? cookieHeader)
    {
        w.WriteStartArray("cookies");
        foreach (var part in (cookieHeader ?? "").Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            w.WriteStartObject();
            WriteCookiePair(w, part);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>A cookie's "name=value" as HAR's name and value (a bare name has an empty value).</summary>
    private static void WriteCookiePair(Utf8JsonWriter w, string pair)
    {
        var eq = pair.IndexOf('=', StringComparison.Ordinal);
        w.WriteString("name", eq < 0 ? pair : pair[..eq]);
        w.WriteString("value", eq < 0 ? "" : pair[(eq + 1)..]);
    }

    private static List<KeyValuePair<string, string>> ParseQuery(string path)
    {
        var result = new List<KeyValuePair<string, string>>();
        var q = path.IndexOf('?', StringComparison.Ordinal);
        if (q < 0)
        {
            return result;
        }

        foreach (var part in path[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            result.Add(new(Unescape(eq < 0 ? part : part[..eq]), Unescape(eq < 0 ? "" : part[(eq + 1)..])));
        }

        return result;

        static string Unescape(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));
    }

    /// <summary>
    /// Splits an absolute URL by hand: <see cref="Uri"/> would normalise the path (dot segments, escapes), and
    /// the request target must stay as it was sent.
    /// </summary>
    private static (string Scheme, string Host, int Port, string Target) SplitUrl(string url, string path)
    {
        var sep = url.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 0)
        {
            throw Error(path, $"\"{url}\" is not an absolute URL");
        }

        var scheme = url[..sep].ToLowerInvariant() switch
        {
            "http" or "ws" => "http",
            "https" or "wss" => "https",
            var other => throw Error(path, $"scheme \"{other}\" is not http, https, ws or wss"),
        };
        var rest = url[(sep + 3)..];
        var end = rest.IndexOfAny(['/', '?', '#']);
        var authority = end < 0 ? rest : rest[..end];
        var target = end < 0 ? "/" : rest[end..];
        var hash = target.IndexOf('#', StringComparison.Ordinal);
        if (hash >= 0)
        {
            target = target[..hash];
        }

        if (target.StartsWith('?'))
        {
            target = "/" + target;
        }

        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            authority = authority[(at + 1)..];
        }

        if (authority.Length == 0 || FlowText.SplitHostPort(authority) is not var (host, port))
        {
            throw Error(path, $"\"{url}\" has no host");
        }

        if (port is < 0 or > 65535)
        {
            throw Error(path, $"\"{url}\" has an invalid port");
        }

        return (scheme, host, port == 0 ? (scheme == "https" ? 443 : 80) : port, target.Length == 0 ? "/" : target);
    }
}
