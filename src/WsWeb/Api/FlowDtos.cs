using System.ComponentModel;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Api;

/// <summary>One row of the flow list: enough to pick a flow without loading its messages.</summary>
public sealed record FlowSummary(
    string Id,
    string Method,
    string Url,
    int? Status,
    bool IsWebSocket,
    bool IsLive,
    long MessagesFromClient,
    long MessagesFromServer,
    long BytesFromClient,
    long BytesFromServer,
    int? CloseCode,
    string? CloseReason,
    bool? ClosedByClient,
    double TimestampCreated,
    double? TimestampEnd,
    string? Error)
{
    /// <summary>The client's address (host:port), as the proxy saw it.</summary>
    public string? Client { get; init; }

    /// <summary>The WebSocket subprotocol the server picked (Sec-WebSocket-Protocol of the 101), if any.</summary>
    public string? Subprotocol { get; init; }

    /// <summary>Bytes of the request body; for plain HTTP flows, whose message counts and bytes stay 0.</summary>
    public long RequestContentLength { get; init; }

    /// <summary>Bytes of the response body, or null before a response arrived.</summary>
    public long? ResponseContentLength { get; init; }

    /// <summary>True for a flow read from a file (import) rather than captured here; it is never live.</summary>
    public bool Imported { get; init; }

    /// <summary>"request" for a flow whose handshake WsWeb sent again (a replay), as mitmproxy's <c>is_replay</c>; otherwise null.</summary>
    public string? Replay { get; init; }

    /// <summary>The id of the flow this one replays, when it is a replay made here.</summary>
    public string? ReplayOf { get; init; }

    internal static FlowSummary From(HttpFlow flow)
    {
        // Counted over retained messages, so the counts match the list the API can show.
        var ws = flow.WebSocket;
        var totals = ws?.Totals ?? default;

        return new FlowSummary(
            flow.Id,
            flow.Request.Method,
            flow.IsWebSocket ? flow.Request.WebSocketUrl : flow.Request.Url,
            flow.Response?.StatusCode,
            flow.IsWebSocket,
            flow.IsLive,
            totals.FromClient,
            totals.FromServer,
            totals.BytesFromClient,
            totals.BytesFromServer,
            ws?.CloseCode,
            ws?.CloseReason,
            ws?.ClosedByClient,
            flow.TimestampCreated,
            // A live flow has not ended, even when its 101 (or its request) has: it ends with its WebSocket or response.
            flow.IsLive ? null : ws?.TimestampEnd ?? flow.Response?.TimestampEnd ?? flow.Request.TimestampEnd,
            flow.Error)
        {
            Client = flow.ClientConn.PeerName,
            Subprotocol = flow.Response?.Headers["Sec-WebSocket-Protocol"],
            RequestContentLength = flow.Request.ContentLength,
            ResponseContentLength = flow.Response?.ContentLength,
            Imported = flow.IsImported,
            Replay = flow.IsReplay,
            ReplayOf = flow.ReplayOf,
        };
    }
}

/// <summary>What <c>DELETE /api/flows</c> removed, and how many matching flows stayed because they are live.</summary>
public sealed record FlowsCleared(int Removed, int Live);

public sealed record FlowPage(IReadOnlyList<FlowSummary> Flows, int Skip, int Limit);

public sealed record HeaderField(string Name, string Value);

public sealed record RequestView(
    string Method,
    string Scheme,
    string Host,
    int Port,
    string Path,
    string HttpVersion,
    string Url,
    IReadOnlyList<HeaderField> Headers,
    long ContentLength,
    double TimestampStart,
    double? TimestampEnd);

public sealed record ResponseView(
    int StatusCode,
    string Reason,
    string HttpVersion,
    IReadOnlyList<HeaderField> Headers,
    long ContentLength,
    double TimestampStart,
    double? TimestampEnd);

/// <summary>One side of the connection with its TLS details (mitmproxy's client_conn/server_conn).</summary>
public sealed record ConnectionView(
    string? PeerName,
    string? SockName,
    string? Address,
    bool TlsEstablished,
    string? Sni,
    string? TlsVersion,
    string? Cipher,
    string? Alpn,
    string? CertificateSubject,
    int CertificateChainLength,
    double? TimestampStart,
    double? TimestampTcpSetup,
    double? TimestampTlsSetup,
    double? TimestampEnd,
    string? Error);

public sealed record WebSocketView(
    bool? ClosedByClient,
    bool ClosedByProxy,
    int? CloseCode,
    string? CloseReason,
    double? TimestampEnd,
    long ClientPings,
    long ServerPings,
    long ClientPongs,
    long ServerPongs,
    long TotalMessages,
    long TrimmedMessages);

/// <summary>Everything about one flow except message contents (those are paged separately).</summary>
public sealed record FlowDetail(
    FlowSummary Summary,
    RequestView Request,
    ResponseView? Response,
    ConnectionView ClientConn,
    ConnectionView ServerConn,
    WebSocketView? WebSocket,
    string? Error)
{
    internal static FlowDetail From(HttpFlow flow)
    {
        var request = flow.Request;
        var ws = flow.WebSocket;
        return new FlowDetail(
            FlowSummary.From(flow),
            new RequestView(request.Method, request.Scheme, request.Host, request.Port, request.Path, request.HttpVersion, request.Url,
                Headers(request.Headers), request.ContentLength, request.TimestampStart, request.TimestampEnd),
            flow.Response is { } response
                ? new ResponseView(response.StatusCode, response.Reason, response.HttpVersion, Headers(response.Headers),
                    response.ContentLength, response.TimestampStart, response.TimestampEnd)
                : null,
            Connection(flow.ClientConn),
            Connection(flow.ServerConn),
            ws is null
                ? null
                : new WebSocketView(ws.ClosedByClient, ws.ClosedByProxy, ws.CloseCode, ws.CloseReason, ws.TimestampEnd,
                    ws.ClientPings, ws.ServerPings, ws.ClientPongs, ws.ServerPongs, ws.TotalCount, ws.TrimmedCount),
            flow.Error);
    }

    private static HeaderField[] Headers(HeaderList headers) => [.. headers.Select(h => new HeaderField(h.Key, h.Value))];

    private static ConnectionView Connection(WsWeb.Core.Flows.ConnectionInfo c) => new(
        c.PeerName, c.SockName, c.Address, c.TlsEstablished, c.Sni, c.TlsVersion, c.Cipher, c.Alpn, c.CertificateSubject,
        c.CertificateChain.Count, c.TimestampStart, c.TimestampTcpSetup, c.TimestampTlsSetup, c.TimestampEnd, c.Error);
}

/// <summary>One WebSocket message as the API shows it.</summary>
/// <param name="Encoding">How <paramref name="Content"/> is written: "utf8" for text messages, "base64" for binary.</param>
/// <param name="Resolution">For held messages: held, released, edited, dropped, timeout-released, timeout-dropped or flow-ended.</param>
public sealed record MessageView(
    long Index,
    bool FromClient,
    string Type,
    int Length,
    double Timestamp,
    bool Dropped,
    bool Injected,
    bool Edited,
    string Encoding,
    string Content,
    string? OriginalEncoding,
    string? OriginalContent,
    string? Resolution)
{
    internal static MessageView From(WebSocketMessage message, string? resolution) => From(message, resolution, int.MaxValue, out _);

    /// <summary>
    /// The view with <see cref="Content"/> and <see cref="OriginalContent"/> cut to their first
    /// <paramref name="maxContentBytes"/> bytes; <paramref name="truncated"/> says whether either was cut.
    /// <see cref="Length"/> stays the length of the whole content.
    /// </summary>
    internal static MessageView From(WebSocketMessage message, string? resolution, int maxContentBytes, out bool truncated)
    {
        // Read each field once: a hook on the relay thread may swap the content while we look.
        var content = message.Content;
        var type = message.Type;
        var original = message.OriginalContent;
        var originalType = message.OriginalType ?? type;
        truncated = content.Length > maxContentBytes || original?.Length > maxContentBytes;
        return new MessageView(
            message.Index,
            message.FromClient,
            TypeName(type),
            content.Length,
            message.Timestamp,
            message.Dropped,
            message.Injected,
            original is not null,
            EncodingOf(type),
            Encode(Head(content, type, maxContentBytes), type),
            original is null ? null : EncodingOf(originalType),
            original is null ? null : Encode(Head(original, originalType, maxContentBytes), originalType),
            resolution);
    }

    public static string TypeName(Opcode type) => type == Opcode.Text ? "text" : "binary";

    private static string EncodingOf(Opcode type) => type == Opcode.Text ? ContentCodec.Utf8Name : ContentCodec.Base64Name;

    private static ReadOnlySpan<byte> Head(byte[] content, Opcode type, int maxBytes)
    {
        if (content.Length <= maxBytes)
        {
            return content;
        }

        // Text is cut back to a whole UTF-8 character, so a preview never ends in a replacement character
        // that is not in the message.
        var end = maxBytes;
        while (type == Opcode.Text && end > 0 && (content[end] & 0xC0) == 0x80)
        {
            end--;
        }

        return content.AsSpan(0, end);
    }

    private static string Encode(ReadOnlySpan<byte> content, Opcode type) =>
        type == Opcode.Text ? System.Text.Encoding.UTF8.GetString(content) : Convert.ToBase64String(content);
}

/// <summary>A page of messages; pass <paramref name="Next"/> as <c>after</c> to read on.</summary>
/// <param name="Next">
/// The index of the last message looked at, matched or not (<c>after</c> when there was none): a filter that matched
/// nothing still moves it on, so polling with it never reads the same messages again.
/// </param>
public sealed record MessagePage(IReadOnlyList<MessageView> Messages, long Next);

/// <summary>Body of an inject.</summary>
public sealed record InjectRequest(
    [property: Description("true sends the message to the client, false to the server.")] bool? ToClient,
    [property: Description("\"text\" (default) or \"binary\".")] string? Type,
    [property: Description("The payload, written in the chosen encoding.")] string? Content,
    [property: Description("\"utf8\" (default), \"base64\" or \"hex\".")] string? Encoding);

/// <summary>
/// The answer to an inject that has not gone out within its wait: it is queued, and goes out in its turn (the flow's
/// messages show it then); a close or kill of the flow before that drops it.
/// </summary>
/// <param name="Queued">Always true: tells this answer from the recorded message a 201 carries.</param>
/// <param name="Detail">What it waits for: a held message of its direction, or what else goes that way ahead of it.</param>
public sealed record InjectQueued(string FlowId, bool ToClient, bool Queued, string Detail);

/// <summary>Body of a close.</summary>
public sealed record CloseRequest(
    [property: Description("\"client\", \"server\" or \"both\" (default).")] string? Target,
    [property: Description("Close code 1000-4999 except reserved ones; default 1000.")] int? Code,
    [property: Description("Reason, at most 123 bytes of UTF-8.")] string? Reason);

/// <summary>
/// When a WebSocket flow's messages went, in equal slices of its life: what the flow page draws as its activity strip,
/// and what a script reads to find bursts and silences without paging through every message.
/// </summary>
/// <param name="Start">Unix seconds where the first slice starts: the flow's start, or its oldest retained message when retention trimmed older ones.</param>
/// <param name="End">Unix seconds where the last slice ends: the close, or now while the flow is live.</param>
/// <param name="SliceSeconds">The length of each slice; slice <c>i</c> starts at <c>Start + i × SliceSeconds</c>.</param>
/// <param name="Messages">Messages counted (those the filter matched, or all retained ones).</param>
/// <param name="Trimmed">Older messages retention removed, which no slice counts.</param>
public sealed record FlowActivity(double Start, double End, double SliceSeconds, long Messages, long Trimmed, IReadOnlyList<ActivitySlice> Slices);

/// <summary>One slice of <see cref="FlowActivity"/>; <see cref="FirstIndex"/> is the index of its first message, null when it has none.</summary>
public sealed record ActivitySlice(long MessagesFromClient, long BytesFromClient, long MessagesFromServer, long BytesFromServer, long Dropped, long Injected, long? FirstIndex);
