using System.Globalization;
using System.Text;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Formats;

/// <summary>
/// mitmproxy flow files: one tnetstring dict per flow, back to back, no header.
/// </summary>
/// <remarks>
/// We write format version 17 (mitmproxy 8.1.1) with every key 8.1.1's <c>set_state</c> pops, because 8.1.1
/// refuses newer versions and mitmproxy 11/12 migrate 17 forward only when nothing is missing. We read
/// 17–21: the keys renamed on the way (client <c>address</c>→<c>peername</c>, server <c>ip_address</c>→<c>peername</c>,
/// <c>source_address</c>→<c>sockname</c>, <c>cipher_name</c>→<c>cipher</c>, <c>via2</c>→<c>via</c>; <c>tls_established</c>,
/// <c>tls_extensions</c> and <c>state</c> dropped) are read under either name. What mitmproxy has no field for
/// (ping counts, edited originals, truncation, trimmed count, the id of the flow a replay repeated) travels in
/// <c>metadata["wsweb"]</c>, which mitmproxy keeps as it is when it rewrites a file. Non-HTTP flows (tcp, udp,
/// dns) are skipped and counted.
/// </remarks>
internal static class MitmproxyFlowFormat
{
    public const int WriteVersion = 17;
    public const int MinReadVersion = 17;
    public const int MaxReadVersion = 21;

    public static void Write(IEnumerable<HttpFlow> flows, Stream output)
    {
        foreach (var flow in flows)
        {
            Tnetstring.Write(ToState(flow), output);
        }
    }

    public static TnetDict ToState(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        var ws = flow.WebSocket;
        var extras = new TnetDict();
        if (flow.ReplayOf is not null)
        {
            // mitmproxy replays a flow in place, under its own id, so it has no key for the original's id.
            extras.Set("replay_of", TnetValue.From(flow.ReplayOf));
        }

        var state = new TnetDict()
            .Set("id", TnetValue.From(flow.Id))
            .Set("error", flow.Error is null ? TnetNull.Instance : new TnetDict()
                .Set("msg", TnetValue.From(flow.Error))
                .Set("timestamp", TnetValue.From(LastTimestamp(flow))))
            .Set("client_conn", ClientState(flow.ClientConn, flow.TimestampCreated, extras))
            .Set("server_conn", ServerState(flow.ServerConn, extras))
            .Set("intercepted", TnetValue.From(false))
            .Set("is_replay", TnetValue.From(flow.IsReplay))
            .Set("marked", TnetValue.From(flow.Marked))
            .Set("metadata", new TnetDict())
            .Set("comment", TnetValue.From(""))
            .Set("timestamp_created", TnetValue.From(flow.TimestampCreated))
            .Set("request", RequestState(flow.Request, extras))
            .Set("response", flow.Response is { } response ? ResponseState(response, extras) : TnetNull.Instance)
            .Set("websocket", ws is null ? TnetNull.Instance : WebSocketState(ws, extras))
            .Set("version", TnetValue.From(WriteVersion))
            .Set("type", TnetValue.From("http"));
        if (extras.Count > 0)
        {
            ((TnetDict)state["metadata"]!).Set("wsweb", extras);
        }

        return state;
    }

    public static FlowImportResult Read(ReadOnlySpan<byte> data, FlowImportOptions options)
    {
        var tnetOptions = new TnetstringReaderOptions { MaxLength = options.MaxTnetstringLength, MaxDepth = options.MaxDepth };
        var flows = new List<HttpFlow>();
        var skippedTypes = new Dictionary<string, int>(StringComparer.Ordinal);
        var warnings = new List<string>();
        var messages = 0;
        var position = 0;
        var number = 0;
        while (position < data.Length)
        {
            var at = position;
            number++;
            var reader = new StateReader(number, at);
            TnetValue value;
            try
            {
                value = Tnetstring.ReadNext(data, ref position, tnetOptions);
            }
            catch (TnetstringException e) when (e.Path is not null)
            {
                throw reader.Error($"{e.Path}: {e.Message}", e);
            }
            catch (TnetstringException e) when (at > 0 && IncompleteEnd(data[at..], at, number, e) is { } warning)
            {
                // mitmdump -w killed mid-write leaves a partial last flow; mitmproxy keeps the flows before it
                // ("Flow file corrupted - loaded N flows."), and so do we, saying what was left out.
                warnings.Add(warning);
                break;
            }

            if (value is not TnetDict state)
            {
                throw reader.Error($"is a {value.TypeName}, expected a dict");
            }

            var type = reader.RequiredText(state, "type");
            var version = reader.RequiredInt(state, "version");
            if (version is < MinReadVersion or > MaxReadVersion)
            {
                throw reader.Error($"has flow format version {version}; versions {MinReadVersion}–{MaxReadVersion} (mitmproxy 8.1 to 12) can be read");
            }

            if (type != "http")
            {
                skippedTypes[type] = skippedTypes.GetValueOrDefault(type) + 1;
                continue;
            }

            var flow = FromState(state, reader, options);
            messages += flow.WebSocket?.Messages.Count ?? 0;
            flows.Add(flow);
        }

        warnings.InsertRange(0, skippedTypes
            .Select(kv => $"skipped {kv.Value} {kv.Key} flow{(kv.Value == 1 ? "" : "s")}: only HTTP and WebSocket flows are supported"));
        return new FlowImportResult(flows, messages, skippedTypes.Values.Sum(), FlowFormat.Mitmproxy, warnings);
    }

    /// <summary>
    /// The warning for bytes after the last complete record when they are how an interrupted or padded file
    /// ends (cut short, or newlines and NULs appended); null for anything else, which stays an error.
    /// </summary>
    private static string? IncompleteEnd(ReadOnlySpan<byte> rest, int at, int number, TnetstringException e)
    {
        var kept = number == 2 ? "the complete record before it was read" : $"the {number - 1} complete records before it were read";
        if (rest.IndexOfAnyExcept(" \t\r\n\0"u8) < 0)
        {
            return $"ignored {rest.Length} byte{(rest.Length == 1 ? "" : "s")} of newlines, spaces or NULs at byte {at}, after the last record; {kept}";
        }

        // Only the outermost value: a record whose own length fits but whose inside is cut is corrupt, not cut short.
        return e.IsTruncated && e.Offset == at
            ? $"the file ends inside record {number}, at byte {at + rest.Length}: {e.Message}; that record was left out and {kept}"
            : null;
    }

    private static double LastTimestamp(HttpFlow flow) =>
        flow.WebSocket?.TimestampEnd ?? flow.Response?.TimestampEnd ?? flow.Response?.TimestampStart ?? flow.Request.TimestampEnd ?? flow.Request.TimestampStart;

    private static TnetDict ClientState(ConnectionInfo c, double timestampCreated, TnetDict extras)
    {
        AddConnectionExtras(c, "client", extras);
        return new TnetDict()
            .Set("address", AddressState(c.PeerName))
            .Set("alpn", c.Alpn is null ? TnetNull.Instance : new TnetBytes(FlowText.Encode(c.Alpn)))
            .Set("cipher_name", TnetValue.From(c.Cipher))
            .Set("id", TnetValue.From(c.Id))
            .Set("mitmcert", TnetNull.Instance)
            .Set("sni", TnetValue.From(c.Sni))
            .Set("timestamp_end", TnetValue.From(c.TimestampEnd))
            // mitmproxy requires a client start time; the flow's creation is the closest we know when we lack one.
            .Set("timestamp_start", TnetValue.From(c.TimestampStart ?? timestampCreated))
            .Set("timestamp_tls_setup", TnetValue.From(c.TimestampTlsSetup))
            .Set("tls_established", TnetValue.From(c.TlsEstablished))
            .Set("tls_extensions", new TnetList([]))
            .Set("tls_version", TnetValue.From(c.TlsVersion))
            .Set("state", TnetValue.From(0))
            .Set("sockname", AddressState(c.SockName))
            .Set("error", TnetValue.From(c.Error))
            .Set("tls", TnetValue.From(c.TlsEstablished))
            .Set("certificate_list", CertificateList(c))
            .Set("alpn_offers", new TnetList([]))
            .Set("cipher_list", new TnetList([]));
    }

    private static TnetDict ServerState(ConnectionInfo c, TnetDict extras)
    {
        AddConnectionExtras(c, "server", extras);
        return new TnetDict()
            .Set("address", AddressState(c.Address))
            .Set("alpn", c.Alpn is null ? TnetNull.Instance : new TnetBytes(FlowText.Encode(c.Alpn)))
            .Set("id", TnetValue.From(c.Id))
            .Set("ip_address", AddressState(c.PeerName))
            .Set("sni", TnetValue.From(c.Sni))
            .Set("source_address", AddressState(c.SockName))
            .Set("timestamp_end", TnetValue.From(c.TimestampEnd))
            .Set("timestamp_start", TnetValue.From(c.TimestampStart))
            .Set("timestamp_tcp_setup", TnetValue.From(c.TimestampTcpSetup))
            .Set("timestamp_tls_setup", TnetValue.From(c.TimestampTlsSetup))
            .Set("tls_established", TnetValue.From(c.TlsEstablished))
            .Set("tls_version", TnetValue.From(c.TlsVersion))
            .Set("via", TnetNull.Instance)
            .Set("state", TnetValue.From(0))
            .Set("error", TnetValue.From(c.Error))
            .Set("tls", TnetValue.From(c.TlsEstablished))
            .Set("certificate_list", CertificateList(c))
            .Set("alpn_offers", new TnetList([]))
            .Set("cipher_name", TnetValue.From(c.Cipher))
            .Set("cipher_list", new TnetList([]))
            .Set("via2", TnetNull.Instance);
    }

    private static TnetList CertificateList(ConnectionInfo c) =>
        new(c.CertificateChain.Select(der => (TnetValue)new TnetBytes(FlowText.DerToPem(der))).ToList());

    private static void AddConnectionExtras(ConnectionInfo c, string side, TnetDict extras)
    {
        // Fields mitmproxy's connection state has no key for.
        if (c.CertificateSubject is not null)
        {
            extras.Set($"{side}_certificate_subject", TnetValue.From(c.CertificateSubject));
        }

        if (side == "client")
        {
            if (c.Address is not null)
            {
                extras.Set("client_address", TnetValue.From(c.Address));
            }

            if (c.TimestampTcpSetup is not null)
            {
                extras.Set("client_timestamp_tcp_setup", TnetValue.From(c.TimestampTcpSetup));
            }

            if (c.TimestampStart is null)
            {
                extras.Set("client_timestamp_start_unknown", TnetValue.From(true));
            }
        }
    }

    private static TnetValue AddressState(string? hostPort) =>
        FlowText.SplitHostPort(hostPort) is var (host, port) ? TnetList.Of(TnetValue.From(host), TnetValue.From(port)) : TnetNull.Instance;

    private static TnetList HeadersState(HeaderList headers) =>
        new(headers.Select(h => (TnetValue)TnetList.Of(new TnetBytes(FlowText.Encode(h.Key)), new TnetBytes(FlowText.Encode(h.Value)))).ToList());

    private static TnetDict RequestState(HttpRequestData r, TnetDict extras)
    {
        AddBodyExtras("request", r.Content, r.ContentLength, r.ContentTruncated, extras);

        // HTTP/2 and 3 carry :authority; mitmproxy leaves it empty for HTTP/1 origin-form requests.
        var authority = r.HttpVersion.StartsWith("HTTP/2", StringComparison.Ordinal) || r.HttpVersion.StartsWith("HTTP/3", StringComparison.Ordinal)
            ? r.Authority
            : "";
        return new TnetDict()
            .Set("http_version", new TnetBytes(FlowText.Encode(r.HttpVersion)))
            .Set("headers", HeadersState(r.Headers))
            .Set("content", r.Content is null ? TnetNull.Instance : new TnetBytes(r.Content))
            .Set("trailers", TnetNull.Instance)
            .Set("timestamp_start", TnetValue.From(r.TimestampStart))
            .Set("timestamp_end", TnetValue.From(r.TimestampEnd))
            .Set("host", TnetValue.From(r.Host))
            .Set("port", TnetValue.From(r.Port))
            .Set("method", new TnetBytes(FlowText.Encode(r.Method)))
            .Set("scheme", new TnetBytes(FlowText.Encode(r.Scheme)))
            .Set("authority", new TnetBytes(FlowText.Encode(authority)))
            .Set("path", new TnetBytes(FlowText.Encode(r.Path)));
    }

    private static TnetDict ResponseState(HttpResponseData r, TnetDict extras)
    {
        AddBodyExtras("response", r.Content, r.ContentLength, r.ContentTruncated, extras);
        return new TnetDict()
            .Set("http_version", new TnetBytes(FlowText.Encode(r.HttpVersion)))
            .Set("headers", HeadersState(r.Headers))
            .Set("content", r.Content is null ? TnetNull.Instance : new TnetBytes(r.Content))
            .Set("trailers", TnetNull.Instance)
            .Set("timestamp_start", TnetValue.From(r.TimestampStart))
            .Set("timestamp_end", TnetValue.From(r.TimestampEnd))
            .Set("status_code", TnetValue.From(r.StatusCode))
            .Set("reason", new TnetBytes(FlowText.Encode(r.Reason)));
    }

    private static void AddBodyExtras(string side, byte[]? content, long contentLength, bool truncated, TnetDict extras)
    {
        if (contentLength != (content?.Length ?? 0))
        {
            extras.Set($"{side}_content_length", TnetValue.From(contentLength));
        }

        if (truncated)
        {
            extras.Set($"{side}_content_truncated", TnetValue.From(true));
        }
    }

    private static TnetDict WebSocketState(WebSocketData ws, TnetDict extras)
    {
        var snapshot = ws.Snapshot();
        var originals = new List<TnetValue>();
        var items = new List<TnetValue>(snapshot.Count);
        foreach (var m in snapshot)
        {
            items.Add(TnetList.Of(
                TnetValue.From((int)m.Type),
                TnetValue.From(m.FromClient),
                new TnetBytes(m.Content),
                TnetValue.From(m.Timestamp),
                TnetValue.From(m.Dropped),
                TnetValue.From(m.Injected)));
            if (m.OriginalContent is not null)
            {
                // metadata must stay JSON-serializable for mitmproxy (it checks with json.dumps), hence base64 text.
                originals.Add(TnetList.Of(
                    TnetValue.From(m.Index),
                    m.OriginalType is { } t ? TnetValue.From((int)t) : TnetNull.Instance,
                    TnetValue.From(Convert.ToBase64String(m.OriginalContent))));
            }
        }

        if (originals.Count > 0)
        {
            extras.Set("originals", new TnetList(originals));
        }

        if (ws.TrimmedCount > 0)
        {
            extras.Set("messages_trimmed", TnetValue.From(ws.TrimmedCount));
        }

        if ((ws.ClientPings | ws.ServerPings | ws.ClientPongs | ws.ServerPongs) != 0)
        {
            extras.Set("pings", TnetList.Of(TnetValue.From(ws.ClientPings), TnetValue.From(ws.ServerPings)));
            extras.Set("pongs", TnetList.Of(TnetValue.From(ws.ClientPongs), TnetValue.From(ws.ServerPongs)));
        }

        return new TnetDict()
            .Set("messages", new TnetList(items))
            .Set("closed_by_client", TnetValue.From(ws.ClosedByClient))
            .Set("close_code", TnetValue.From((long?)ws.CloseCode))
            .Set("close_reason", TnetValue.From(ws.CloseReason))
            .Set("timestamp_end", TnetValue.From(ws.TimestampEnd));
    }

    private static HttpFlow FromState(TnetDict state, StateReader r, FlowImportOptions options)
    {
        var metadata = r.OptionalDict(state, "metadata", "metadata");
        var extras = metadata is null ? null : r.OptionalDict(metadata, "wsweb", "metadata.wsweb");
        var x = new Extras(extras, r);

        var requestState = r.RequiredDict(state, "request", "request");
        var request = new HttpRequestData
        {
            Method = r.RequiredText(requestState, "method", "request.method"),
            Scheme = r.RequiredText(requestState, "scheme", "request.scheme"),
            Host = r.RequiredText(requestState, "host", "request.host"),
            Port = (int)r.RequiredInt(requestState, "port", "request.port", 0, 65535),
            Path = r.RequiredText(requestState, "path", "request.path"),
            HttpVersion = r.Text(requestState, "http_version", "request.http_version") ?? "HTTP/1.1",
            Headers = r.Headers(requestState, "headers", "request.headers"),
            Content = r.Bytes(requestState, "content", "request.content"),
            TimestampStart = r.Number(requestState, "timestamp_start", "request.timestamp_start") ?? 0,
            TimestampEnd = r.Number(requestState, "timestamp_end", "request.timestamp_end"),
        };
        request.ContentLength = x.Int("request_content_length") ?? request.Content?.Length ?? 0;
        request.ContentTruncated = x.Bool("request_content_truncated") ?? false;

        var flow = new HttpFlow(request, r.Number(state, "timestamp_created", "timestamp_created") ?? request.TimestampStart)
        {
            Id = ReadId(state, r),
            ClientConn = ReadConnection(r.OptionalDict(state, "client_conn", "client_conn"), "client_conn", r, x, client: true),
            ServerConn = ReadConnection(r.OptionalDict(state, "server_conn", "server_conn"), "server_conn", r, x, client: false),
            IsImported = true,
            IsReplay = ReadIsReplay(state, r),
            ReplayOf = ReadReplayOf(x, r),
        };
        flow.IsLive = false;
        flow.Marked = r.Text(state, "marked", "marked") ?? "";
        if (r.OptionalDict(state, "error", "error") is { } error)
        {
            flow.Error = r.Text(error, "msg", "error.msg") ?? "";
        }

        if (r.OptionalDict(state, "response", "response") is { } responseState)
        {
            var response = new HttpResponseData
            {
                StatusCode = (int)r.RequiredInt(responseState, "status_code", "response.status_code", 0, 999),
                Reason = r.Text(responseState, "reason", "response.reason") ?? "",
                HttpVersion = r.Text(responseState, "http_version", "response.http_version") ?? "HTTP/1.1",
                Headers = r.Headers(responseState, "headers", "response.headers"),
                Content = r.Bytes(responseState, "content", "response.content"),
                TimestampStart = r.Number(responseState, "timestamp_start", "response.timestamp_start") ?? 0,
                TimestampEnd = r.Number(responseState, "timestamp_end", "response.timestamp_end"),
            };
            response.ContentLength = x.Int("response_content_length") ?? response.Content?.Length ?? 0;
            response.ContentTruncated = x.Bool("response_content_truncated") ?? false;
            flow.Response = response;
        }

        if (r.OptionalDict(state, "websocket", "websocket") is { } wsState)
        {
            flow.WebSocket = ReadWebSocket(wsState, r, x, options);
        }

        return flow;
    }

    /// <summary>The flow's id (mitmproxy writes a uuid4), or a new one; an id the REST routes cannot address is refused.</summary>
    private static string ReadId(TnetDict state, StateReader r)
    {
        if (r.Text(state, "id", "id") is not { } id)
        {
            return Guid.NewGuid().ToString();
        }

        return ImportChecks.IdProblem(id) is { } problem ? throw r.Error($"id: {problem}") : id;
    }

    /// <summary>"request" (client replay), "response" (server replay) or null; other text is refused.</summary>
    private static string? ReadIsReplay(TnetDict state, StateReader r)
    {
        var isReplay = r.Text(state, "is_replay", "is_replay");
        return isReplay is not null && ImportChecks.ReplayProblem(isReplay) is { } problem ? throw r.Error($"is_replay: {problem}") : isReplay;
    }

    /// <summary>The id of the flow a WsWeb replay repeated; one the REST routes cannot address is refused, as it would be a dead link.</summary>
    private static string? ReadReplayOf(Extras x, StateReader r)
    {
        var id = x.Text("replay_of");
        return id is not null && ImportChecks.IdProblem(id) is { } problem ? throw r.Error($"metadata.wsweb.replay_of: {problem}") : id;
    }

    private static ConnectionInfo ReadConnection(TnetDict? c, string path, StateReader r, Extras x, bool client)
    {
        var info = new ConnectionInfo();
        if (c is null)
        {
            return info;
        }

        info.Id = r.Text(c, "id", $"{path}.id") ?? info.Id;
        info.PeerName = r.Address(c, client ? ["peername", "address"] : ["peername", "ip_address"], path);
        info.SockName = r.Address(c, ["sockname", "source_address"], path);
        if (!client)
        {
            info.Address = r.Address(c, ["address"], path);
        }

        info.Sni = r.Text(c, "sni", $"{path}.sni");
        info.TlsVersion = r.Text(c, "tls_version", $"{path}.tls_version");
        info.Cipher = r.Text(c, "cipher", $"{path}.cipher") ?? r.Text(c, "cipher_name", $"{path}.cipher_name");
        info.Alpn = r.Text(c, "alpn", $"{path}.alpn");
        info.TimestampStart = r.Number(c, "timestamp_start", $"{path}.timestamp_start");
        info.TimestampTcpSetup = r.Number(c, "timestamp_tcp_setup", $"{path}.timestamp_tcp_setup");
        info.TimestampTlsSetup = r.Number(c, "timestamp_tls_setup", $"{path}.timestamp_tls_setup");
        info.TimestampEnd = r.Number(c, "timestamp_end", $"{path}.timestamp_end");
        info.Error = r.Text(c, "error", $"{path}.error");

        // Version 19 dropped tls_established: mitmproxy derives it from the handshake time.
        info.TlsEstablished = r.Bool(c, "tls_established", $"{path}.tls_established") ?? info.TimestampTlsSetup is not null;
        info.CertificateChain = r.Certificates(c, "certificate_list", $"{path}.certificate_list");

        var side = client ? "client" : "server";
        info.CertificateSubject = x.Text($"{side}_certificate_subject");
        if (info.CertificateSubject is null)
        {
            var der = client
                ? r.Bytes(c, "mitmcert", $"{path}.mitmcert") is { } pem ? FlowText.PemToDer(pem) : null
                : info.CertificateChain.FirstOrDefault();
            info.CertificateSubject = der is null ? null : FlowText.SubjectOf(der);
        }

        if (client)
        {
            info.Address = x.Text("client_address");
            info.TimestampTcpSetup ??= x.Number("client_timestamp_tcp_setup");
            if (x.Bool("client_timestamp_start_unknown") == true)
            {
                info.TimestampStart = null;
            }
        }

        return info;
    }

    private static WebSocketData ReadWebSocket(TnetDict wsState, StateReader r, Extras x, FlowImportOptions options)
    {
        var ws = new WebSocketData(options.MaxMessagesPerFlow, options.MaxBytesPerFlow);
        // Only a hint of ours, so a negative count is ignored; a huge one is refused, as it would push
        // indices past what the dashboard can hold.
        var trimmed = x.Int("messages_trimmed") is { } hint && hint > 0 ? hint : 0;
        if (ImportChecks.TrimmedCountProblem(trimmed) is { } trimmedProblem)
        {
            throw r.Error($"metadata.wsweb.messages_trimmed: {trimmedProblem}");
        }

        ws.SetTrimmedCount(trimmed);
        var messages = r.RequiredList(wsState, "messages", "websocket.messages");
        for (var i = 0; i < messages.Items.Count; i++)
        {
            var path = $"websocket.messages[{i}]";
            if (messages.Items[i] is not TnetList item || item.Items.Count != 6)
            {
                throw r.Error($"{path} (byte {messages.Items[i].Offset}) must be a list [type, from_client, content, timestamp, dropped, injected]");
            }

            var type = r.ItemInt(item.Items[0], $"{path}[0]");
            if (type is not ((long)Opcode.Text or (long)Opcode.Binary))
            {
                throw r.Error($"{path}[0] (byte {item.Items[0].Offset}): message type {type} is neither 1 (text) nor 2 (binary)");
            }

            ws.Add(new WebSocketMessage(
                (Opcode)type,
                r.ItemBool(item.Items[1], $"{path}[1]"),
                r.ItemBytes(item.Items[2], $"{path}[2]"),
                r.ItemNumber(item.Items[3], $"{path}[3]"),
                r.ItemBool(item.Items[4], $"{path}[4]"),
                r.ItemBool(item.Items[5], $"{path}[5]")));
        }

        if (ImportChecks.LastIndexProblem(trimmed, ws.TotalCount) is { } lastIndexProblem)
        {
            throw r.Error($"metadata.wsweb.messages_trimmed: {lastIndexProblem}");
        }

        foreach (var original in x.List("originals"))
        {
            if (original is TnetList { Items: [TnetInt index, var type, TnetString content] }
                && ws.Find(index.Value) is { } message)
            {
                try
                {
                    message.SetOriginal(Convert.FromBase64String(content.Value), type is TnetInt t ? (Opcode)t.Value : null);
                }
                catch (FormatException)
                {
                    throw r.Error($"metadata.wsweb.originals (byte {content.Offset}): invalid base64");
                }
            }
        }

        if (x.List("pings") is [TnetInt clientPings, TnetInt serverPings] && x.List("pongs") is [TnetInt clientPongs, TnetInt serverPongs])
        {
            ws.SetControlCounts(clientPings.Value, serverPings.Value, clientPongs.Value, serverPongs.Value);
        }

        ws.ClosedByClient = r.Bool(wsState, "closed_by_client", "websocket.closed_by_client");
        var closeCode = r.Int(wsState, "close_code", "websocket.close_code");
        if (closeCode is { } code && ImportChecks.CloseCodeProblem(code) is { } codeProblem)
        {
            throw r.Error($"websocket.close_code: {codeProblem}");
        }

        ws.CloseCode = (int?)closeCode;
        ws.CloseReason = r.Text(wsState, "close_reason", "websocket.close_reason");
        ws.TimestampEnd = r.Number(wsState, "timestamp_end", "websocket.timestamp_end");
        return ws;
    }

    /// <summary>Typed access to one flow's state; every failure names the flow, the key path and the byte.</summary>
    private readonly struct StateReader(int number, long offset)
    {
        public FlowFormatException Error(string detail) =>
            new($"mitmproxy flow {number} (byte {offset}): {detail}");

        public FlowFormatException Error(string detail, Exception inner) =>
            new($"mitmproxy flow {number} (byte {offset}): {detail}", inner);

        private FlowFormatException WrongType(string path, TnetValue value, string expected) =>
            Error($"{path} (byte {value.Offset}) is a {value.TypeName}, expected {expected}");

        private static TnetValue? Get(TnetDict d, string key) => d[key] is { } v and not TnetNull ? v : null;

        public TnetDict RequiredDict(TnetDict d, string key, string path) =>
            OptionalDict(d, key, path) ?? throw Error($"{path} is missing");

        public TnetDict? OptionalDict(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            TnetDict dict => dict,
            var v => throw WrongType(path, v, "a dict"),
        };

        public TnetList RequiredList(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => throw Error($"{path} is missing"),
            TnetList list => list,
            var v => throw WrongType(path, v, "a list"),
        };

        public string RequiredText(TnetDict d, string key, string? path = null) =>
            Text(d, key, path ?? key) ?? throw Error($"{path ?? key} is missing");

        public string? Text(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            TnetString s => s.Value,
            TnetBytes b => FlowText.Decode(b.Value),
            var v => throw WrongType(path, v, "a string"),
        };

        public byte[]? Bytes(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            TnetBytes b => b.Value,
            TnetString s => Encoding.UTF8.GetBytes(s.Value),
            var v => throw WrongType(path, v, "bytes"),
        };

        public long RequiredInt(TnetDict d, string key, string? path = null, long min = long.MinValue, long max = long.MaxValue)
        {
            var value = Int(d, key, path ?? key) ?? throw Error($"{path ?? key} is missing");
            return value >= min && value <= max ? value : throw Error($"{path ?? key} = {value} is out of range");
        }

        public long? Int(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            var v => ItemInt(v, path),
        };

        public double? Number(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            var v => ItemNumber(v, path),
        };

        public bool? Bool(TnetDict d, string key, string path) => Get(d, key) switch
        {
            null => null,
            var v => ItemBool(v, path),
        };

        public long ItemInt(TnetValue v, string path) => v is TnetInt i ? i.Value : throw WrongType(path, v, "an int");

        /// <summary>Every number read this way is a timestamp (seconds since 1970).</summary>
        public double ItemNumber(TnetValue v, string path)
        {
            var value = v switch
            {
                TnetFloat f => f.Value,
                TnetInt i => i.Value,
                _ => throw WrongType(path, v, "a number"),
            };
            return ImportChecks.TimestampProblem(value) is { } problem ? throw Error($"{path} (byte {v.Offset}): {problem}") : value;
        }

        public bool ItemBool(TnetValue v, string path) => v is TnetBool b ? b.Value : throw WrongType(path, v, "a bool");

        public byte[] ItemBytes(TnetValue v, string path) => v switch
        {
            TnetBytes b => b.Value,
            TnetString s => Encoding.UTF8.GetBytes(s.Value),
            _ => throw WrongType(path, v, "bytes"),
        };

        /// <summary>An address tuple <c>(host, port[, flowinfo, scope_id])</c> under the first key present.</summary>
        public string? Address(TnetDict d, string[] keys, string path)
        {
            foreach (var key in keys)
            {
                switch (Get(d, key))
                {
                    case null:
                        continue;
                    case TnetList { Items: [var host, TnetInt port, ..] } when host is TnetString or TnetBytes:
                        return FlowText.JoinHostPort(host is TnetString s ? s.Value : FlowText.Decode(((TnetBytes)host).Value), port.Value);
                    case var v:
                        throw WrongType($"{path}.{key}", v, "an address [host, port]");
                }
            }

            return null;
        }

        public HeaderList Headers(TnetDict d, string key, string path)
        {
            var headers = new HeaderList();
            if (Get(d, key) is not { } value)
            {
                return headers;
            }

            if (value is not TnetList list)
            {
                throw WrongType(path, value, "a list of [name, value]");
            }

            for (var i = 0; i < list.Items.Count; i++)
            {
                if (list.Items[i] is not TnetList { Items: [var name, var fieldValue] })
                {
                    throw WrongType($"{path}[{i}]", list.Items[i], "a [name, value] pair");
                }

                headers.Add(FlowText.Decode(ItemBytes(name, $"{path}[{i}][0]")), FlowText.Decode(ItemBytes(fieldValue, $"{path}[{i}][1]")));
            }

            return headers;
        }

        public IReadOnlyList<byte[]> Certificates(TnetDict d, string key, string path)
        {
            if (Get(d, key) is not { } value)
            {
                return [];
            }

            if (value is not TnetList list)
            {
                throw WrongType(path, value, "a list of PEM certificates");
            }

            var result = new List<byte[]>(list.Items.Count);
            for (var i = 0; i < list.Items.Count; i++)
            {
                var pem = ItemBytes(list.Items[i], $"{path}[{i}]");
                result.Add(FlowText.PemToDer(pem) ?? throw Error($"{path}[{i}] (byte {list.Items[i].Offset}) is not a PEM certificate"));
            }

            return result;
        }
    }

    /// <summary>Our <c>metadata["wsweb"]</c> extras; lenient, since they are only hints on top of mitmproxy's own state.</summary>
    private readonly struct Extras(TnetDict? extras, StateReader r)
    {
        public long? Int(string key) => extras is null ? null : r.Int(extras, key, $"metadata.wsweb.{key}");

        public double? Number(string key) => extras is null ? null : r.Number(extras, key, $"metadata.wsweb.{key}");

        public bool? Bool(string key) => extras is null ? null : r.Bool(extras, key, $"metadata.wsweb.{key}");

        public string? Text(string key) => extras is null ? null : r.Text(extras, key, $"metadata.wsweb.{key}");

        public IReadOnlyList<TnetValue> List(string key) => extras?[key] is TnetList list ? list.Items : [];
    }
}
