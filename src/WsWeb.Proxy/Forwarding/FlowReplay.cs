using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Forwarding;

/// <summary>A flow WsWeb will not replay, and why (a body it holds only in part, shutting down…).</summary>
internal sealed class ReplayRefusedException(string message) : Exception(message);

/// <summary>As many replays as WsWeb keeps live at once are live already; this one was not sent.</summary>
internal sealed class ReplayLimitException(string message) : Exception(message);

/// <summary>
/// Sends a recorded request again as a new flow (mitmproxy's client replay), WebSocket handshakes included, as Burp's
/// Repeater reconnects: WsWeb opens a new connection to the flow's server with the recorded handshake (a fresh key)
/// and stands in for the client. A replayed WebSocket is live like any other flow: what the server sends is recorded,
/// messages are injected toward the server through the usual API, and rules, intercept and addons see it all. Its
/// client is WsWeb: a WebSocket over in-memory pipes that answers a close and reads everything else away.
/// </summary>
/// <remarks>mitmproxy's client replay refuses WebSocket flows; its <c>is_replay = "request"</c> marks the new flow.</remarks>
internal sealed partial class FlowReplay(
    UpstreamConnector upstream,
    WebSocketForwarder forwarder,
    FlowStore store,
    LiveRelays live,
    Rewriting.RequestRewrites rewrites,
    ProxyOptions options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<FlowReplay> logger)
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>
    /// How long the server has to begin its answer. A REST call waits for it, and a server that never answers would
    /// hold the call (and the replay's flow) open without end.
    /// </summary>
    internal static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Replays live at once. Each holds a server connection (and a WebSocket replay an in-memory client) outside the
    /// proxy listener's connection limit: a script replaying in a loop must not spend the process's file descriptors,
    /// which the proxy needs to accept its clients. People replay a few at a time; load generation is another tool's job.
    /// </summary>
    internal const int MaxLiveReplays = 100;

    /// <summary>
    /// Sends <paramref name="original"/>'s request again as a new flow, and returns it once the server's answer began:
    /// a WebSocket relay or the rest of the response body goes on in the background.
    /// </summary>
    /// <param name="resendClientMessages">
    /// For a WebSocket: also sends, in order, what the server got from the client side of the original (its messages
    /// not dropped, as they went out: edited ones edited, injected ones included), as far as the store still holds them.
    /// </param>
    /// <returns>The new flow: live on 101 or while the response body arrives; otherwise finished, with the error.</returns>
    /// <exception cref="ReplayRefusedException">The request cannot be sent again as recorded, or WsWeb is shutting down.</exception>
    public async Task<HttpFlow> StartAsync(HttpFlow original, bool resendClientMessages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(original);
        var webSocket = IsHandshake(original.Request);
        var target = TargetOf(original, webSocket, resendClientMessages, options.BodyCaptureLimit);
        if (live.ShuttingDown)
        {
            throw new ReplayRefusedException("WsWeb is shutting down; it sends no new request.");
        }

        // Counted from the store rather than kept in step with every way a replay ends; two calls at once may both pass
        // at the limit, which bounds nothing less.
        var liveReplays = store.Query(static f => f.IsReplay is not null && f.IsLive).Count;
        if (liveReplays >= MaxLiveReplays)
        {
            throw new ReplayLimitException($"{liveReplays} replays are live, and WsWeb keeps at most {MaxLiveReplays} at once: close or kill some (filter ~replay & ~live) before replaying again.");
        }

        // Copied now: the original's messages may be trimmed or the flow deleted while the handshake is under way.
        var resend = resendClientMessages ? ClientSide(original) : [];
        var key = webSocket && original.Request.Headers["Sec-WebSocket-Key"] is not null ? NewKey() : null;
        var offer = webSocket ? PerMessageDeflateNegotiation.BuildUpstreamOffer(PerMessageDeflateNegotiation.ParseOffers(original.Request.Headers.GetJoined("Sec-WebSocket-Extensions"))) : null;
        var flow = NewFlow(original, target, webSocket, key, offer);

        // A replay goes through --block-list, --map-remote and --modify-headers as a proxied request does, as mitmproxy's
        // replays go through its request hooks: a blocked or mapped server is not reached behind the user's back.
        var rewritten = rewrites.Rewrite(flow, new HeaderDictionary(), ref target);

        flow.IsLive = true; // before Add, as for a proxied flow: a flow the store sees as finished may be evicted
        store.Add(flow);
        LogStarted(flow.Id, original.Id, target.Host, target.Port);

        var handedOver = false;
        try
        {
            if (rewritten != default)
            {
                Blocked(flow, rewritten);
                return flow;
            }

            using var answerTimeout = new CancellationTokenSource(AnswerTimeout, time);
            using var killed = new CancellationTokenSource();
            using var killable = live.TrackExchange(flow, () => Cancel(killed));
            using var exchange = CancellationTokenSource.CreateLinkedTokenSource([cancellationToken, lifetime.ApplicationStopping, answerTimeout.Token, killed.Token]);
            using var request = UpstreamRequest(flow, target, webSocket, offer, out var upstreamSocket);
            HttpResponseMessage response;
            try
            {
                response = await upstream.SendAsync(request, target.UseTls, exchange.Token);
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Net.Sockets.SocketException or SelfTargetException
                or System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
            {
                flow.Error = killed.IsCancellationRequested ? "Connection killed."
                    : ex is not OperationCanceledException ? ProxyRequestHandler.Describe(ex, target).Text
                    : lifetime.ApplicationStopping.IsCancellationRequested ? "WsWeb shut down before the server answered the replay."
                    : cancellationToken.IsCancellationRequested ? "The replay was cancelled before the server answered."
                    : $"{target.Host}:{target.Port} did not answer the replay within {AnswerTimeout.TotalSeconds:0} s.";
                LogFailed(flow.Id, flow.Error);
                return flow;
            }

            // The response's content is the rest of the body, or on 101 the connection: whoever reads it owns it.
            var owned = response;
            try
            {
                var now = Timestamps.Now(time);
                flow.Request.TimestampEnd = now;
                var recorded = Headers.RecordResponse(response, now);
                flow.Response = recorded;
                rewrites.ApplyToResponse(flow, new HeaderDictionary());
                if (response.StatusCode != HttpStatusCode.SwitchingProtocols || !webSocket)
                {
                    if (webSocket)
                    {
                        LogRefused(flow.Id, (int)response.StatusCode);
                    }

                    store.FlowUpdated(flow);
                    _ = RecordBodyAsync(flow, response, recorded);
                    (owned, handedOver) = (null, true);
                    return flow;
                }

                if (lifetime.ApplicationStopping.IsCancellationRequested)
                {
                    // A relay started now would miss RelayShutdown's 1001s (as in WebSocketForwarder).
                    flow.Error = "WsWeb shut down before the replay's WebSocket could start.";
                    return flow;
                }

                var upstreamStream = await response.Content.ReadAsStreamAsync(exchange.Token);
                var serverExtensions = response.Headers.TryGetValues("Sec-WebSocket-Extensions", out var values) ? string.Join(", ", values) : null;
                if (HandshakeError(response, key) is { } handshakeError
                    || !PerMessageDeflateNegotiation.TryParseResponse(serverExtensions, PerMessageDeflateNegotiation.ParseOffers(offer), out var deflate, out handshakeError))
                {
                    // As a client must (RFC 6455 §4.1): a 101 that does not answer our handshake is no WebSocket.
                    await upstreamStream.DisposeAsync();
                    flow.Error = $"The server's 101 does not complete the WebSocket handshake: {handshakeError}";
                    recorded.TimestampEnd = Timestamps.Now(time);
                    LogFailed(flow.Id, flow.Error);
                    return flow;
                }

                recorded.TimestampEnd = Timestamps.Now(time);
                flow.WebSocket = store.CreateWebSocketData();
                store.FlowUpdated(flow);
                var server = forwarder.CreateServerLeg(upstreamStream, deflate, upstreamSocket.Value);
                _ = RelayAsync(flow, response, server, resend);
                (owned, handedOver) = (null, true);
                return flow;
            }
            finally
            {
                owned?.Dispose();
            }
        }
        finally
        {
            if (!handedOver)
            {
                End(flow);
            }
        }
    }

    /// <summary>Records a replay --block-list matched (never sent: its status, or 444's closed connection) or a --map-remote could not send.</summary>
    private void Blocked(HttpFlow flow, Rewriting.RewriteOutcome rewritten)
    {
        if (rewritten.Error is not null || rewritten.BlockStatus == Rewriting.BlockSpec.NoResponse)
        {
            flow.Error = rewritten.Error ?? "Blocked by --block-list (444): the replay was not sent.";
        }
        else
        {
            flow.Response = Rewriting.RequestRewrites.BlockedAnswer(rewritten.BlockStatus!.Value, Timestamps.Now(time), connectionClose: false);
        }

        LogFailed(flow.Id, flow.Error ?? $"blocked by --block-list ({rewritten.BlockStatus})");
    }

    /// <summary>Whether the request asks for a WebSocket (a refused upgrade too): replayed as a handshake.</summary>
    internal static bool IsHandshake(HttpRequestData request) => Headers.WebSocketUpgradeToken(request.Headers.GetJoined("Upgrade")) is not null;

    /// <summary>Whether only part of the request's body was recorded, so it cannot go again as it was.</summary>
    internal static bool BodyRecordedInPart(HttpRequestData request) =>
        request.ContentTruncated || (request.Content is null && request.ContentLength > 0) || request.Content?.Length < request.ContentLength;

    private void End(HttpFlow flow)
    {
        flow.Request.TimestampEnd ??= Timestamps.Now(time);
        flow.IsLive = false;
        store.FlowEnded(flow);
    }

    /// <summary>Where the original went, or a refusal saying why it cannot be sent again as recorded.</summary>
    private static ProxyTarget TargetOf(HttpFlow original, bool webSocket, bool resend, int captureLimit)
    {
        var request = original.Request;
        if (request.Method.Equals("CONNECT", StringComparison.OrdinalIgnoreCase))
        {
            throw new ReplayRefusedException($"Flow {original.Id} is a CONNECT; WsWeb replays the requests that went through a tunnel, not the tunnel.");
        }

        if (!webSocket && resend)
        {
            throw new ReplayRefusedException($"Flow {original.Id} is not a WebSocket handshake; resend sends a WebSocket's messages again.");
        }

        // As mitmproxy: a request is sent again only as it was, and a body known in part is not that.
        if (!webSocket && BodyRecordedInPart(request))
        {
            throw new ReplayRefusedException($"Flow {original.Id}'s request body was recorded only in part ({request.Content?.Length ?? 0} of {request.ContentLength} bytes: a flow keeps the first {captureLimit} bytes of a body), so it cannot be sent again as it was.");
        }

        var scheme = request.Scheme.ToLowerInvariant() switch
        {
            "https" or "wss" => "https",
            "http" or "ws" => "http",
            _ => throw new ReplayRefusedException($"Flow {original.Id} has the scheme '{request.Scheme}'; WsWeb replays over http or https."),
        };
        if (string.IsNullOrEmpty(request.Host) || request.Port is < 1 or > 65535)
        {
            throw new ReplayRefusedException($"Flow {original.Id} names no server to connect to ('{request.Host}:{request.Port}').");
        }

        // The name the original's TLS asked for, when it was not the host dialled (see ProxyTarget.TlsName).
        var sni = original.ServerConn.Sni;
        var tlsName = scheme == "https" && sni is not null && !string.Equals(sni, request.Host, StringComparison.OrdinalIgnoreCase) ? sni : null;
        return new ProxyTarget(scheme, request.Host, request.Port, string.IsNullOrEmpty(request.Path) ? "/" : request.Path, tlsName);
    }

    private HttpFlow NewFlow(HttpFlow original, ProxyTarget target, bool webSocket, string? key, string? offer)
    {
        var now = Timestamps.Now(time);
        var source = original.Request;

        // The record shows what goes out: for a handshake, the original's headers with a key of our own and the
        // extensions we offer.
        var headers = new HeaderList();
        foreach (var (name, value) in source.Headers)
        {
            if (webSocket && name.Equals("Sec-WebSocket-Extensions", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            headers.Add(name, key is not null && name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase) ? key : value);
        }

        if (offer is not null)
        {
            headers.Add("Sec-WebSocket-Extensions", offer);
        }

        var request = new HttpRequestData
        {
            Method = source.Method,
            Scheme = target.Scheme,
            Host = target.Host,
            Port = target.Port,
            Path = target.PathAndQuery,
            HttpVersion = "HTTP/1.1",
            Headers = headers,
            Content = webSocket ? null : source.Content ?? [],
            ContentLength = webSocket ? 0 : source.Content?.Length ?? 0,
            TimestampStart = now,
        };
        return new HttpFlow(request, now)
        {
            ServerConn = new WsWeb.Core.Flows.ConnectionInfo { Address = $"{target.Host}:{target.Port}" },
            IsReplay = "request",
            ReplayOf = original.Id,
        };
    }

    private static HttpRequestMessage UpstreamRequest(HttpFlow flow, ProxyTarget target, bool webSocket, string? offer, out StrongBox<System.Net.Sockets.Socket?> socket)
    {
        IHeaderDictionary recorded = new HeaderDictionary();
        foreach (var (name, value) in flow.Request.Headers)
        {
            recorded.Append(name, value);
        }

        var body = flow.Request.Content;
        var request = new HttpRequestMessage(new HttpMethod(flow.Request.Method), target.ConnectUri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            // A bodiless POST gets empty content, or SocketsHttpHandler could send it twice (see ProxyRequestHandler).
            Content = body is { Length: > 0 } || Headers.HasContentHeaders(recorded) || !ProxyRequestHandler.IsIdempotent(flow.Request.Method) ? new ByteArrayContent(body ?? []) : null,
        };

        // As the forwarder sends a request: hop-by-hop fields stay behind (the body goes with a Content-Length), and
        // Expect is for the hop that is no more. A handshake's Connection and Upgrade are ours.
        Headers.CopyRequest(recorded, request, request.Content, skip: static name =>
            name.Equals("Sec-WebSocket-Extensions", StringComparison.OrdinalIgnoreCase) || name.Equals("Expect", StringComparison.OrdinalIgnoreCase));
        if (webSocket)
        {
            request.Headers.Connection.Add("Upgrade");
            request.Headers.TryAddWithoutValidation("Upgrade", Headers.WebSocketUpgradeToken(recorded.Upgrade));
            if (offer is not null)
            {
                request.Headers.TryAddWithoutValidation("Sec-WebSocket-Extensions", offer);
            }
        }

        request.Options.Set(UpstreamConnector.ServerConnKey, flow.ServerConn);
        target.Describe(request);
        socket = new StrongBox<System.Net.Sockets.Socket?>();
        request.Options.Set(UpstreamConnector.SocketKey, socket);
        return request;
    }

    /// <summary>Why a 101 does not answer our handshake, or null when it does (RFC 6455 §4.1, the client's checks).</summary>
    private static string? HandshakeError(HttpResponseMessage response, string? key)
    {
        if (Headers.WebSocketUpgradeToken(response.Headers.NonValidated.TryGetValues("Upgrade", out var upgrade) ? string.Join(", ", upgrade) : null) is null)
        {
            return "it has no 'Upgrade: websocket'.";
        }

        if (key is null)
        {
            return null;
        }

        var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
        var accept = response.Headers.NonValidated.TryGetValues("Sec-WebSocket-Accept", out var accepts) ? string.Join(", ", accepts) : null;
        return accept == expected ? null : $"its Sec-WebSocket-Accept is '{accept}', not '{expected}'.";
    }

    /// <summary>Reads the response body to its end, keeping what the capture limit allows, and ends the flow.</summary>
    private async Task RecordBodyAsync(HttpFlow flow, HttpResponseMessage response, HttpResponseData recorded)
    {
        var recorder = new BodyRecorder(options.BodyCaptureLimit);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
        using var killable = live.TrackExchange(flow, () => Cancel(reading));
        try
        {
            using (response)
            {
                await using var body = await response.Content.ReadAsStreamAsync(reading.Token);
                await ProxyRequestHandler.CopyAsync(body, Stream.Null, recorder, reading.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException or UpstreamBodyException)
        {
            // A kill set its own error ("Connection killed.").
            flow.Error ??= lifetime.ApplicationStopping.IsCancellationRequested
                ? "WsWeb shut down while the replay's response body arrived."
                : $"{flow.Request.Host}:{flow.Request.Port} ended the replay's response body early: {ex.Message}";
        }
        catch (Exception ex)
        {
            LogUnexpected(flow.Id, ex);
            flow.Error = $"Reading the replay's response failed: {ex.Message}";
        }
        finally
        {
            recorder.ApplyTo(recorded);
            recorded.TimestampEnd = Timestamps.Now(time);
            End(flow);
        }
    }

    private static List<(bool IsText, byte[] Content)> ClientSide(HttpFlow original)
    {
        var sent = new List<(bool, byte[])>();
        if (original.WebSocket is not { } ws)
        {
            return sent;
        }

        foreach (var message in ws.Snapshot())
        {
            if (!message.FromClient || message.Dropped)
            {
                continue;
            }

            try
            {
                sent.Add((message.Type == Opcode.Text, [.. message.Content]));
            }
            catch (InvalidOperationException)
            {
                // Trimmed by retention since the snapshot: nothing left to send.
            }
        }

        return sent;
    }

    private static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    /// <summary>Runs the relay with WsWeb as its client until the flow ends.</summary>
    private async Task RelayAsync(HttpFlow flow, HttpResponseMessage response, RelayLeg server, List<(bool IsText, byte[] Content)> resend)
    {
        using var upgraded = response;
        var toRelay = new Pipe();
        var toClient = new Pipe();
        using var gone = new CancellationTokenSource();
        using var socket = WebSocket.CreateFromStream(
            new DuplexPipeStream(new DuplexPipe(toClient.Reader, toRelay.Writer)),
            new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = Timeout.InfiniteTimeSpan });
        using var client = new RelayLeg("client", isClient: true, toRelay.Reader, toClient.Writer, abort: () => Cancel(gone));
        var peer = RunClientAsync(flow, socket, resend, gone.Token);
        try
        {
            using (server)
            {
                await forwarder.RelayAsync(flow, client, server, gone.Token);
            }
        }
        catch (Exception ex)
        {
            LogUnexpected(flow.Id, ex);
        }
        finally
        {
            Cancel(gone);
            await peer;
            await toRelay.Writer.CompleteAsync();
            await toClient.Reader.CompleteAsync();
            LogEnded(flow.Id, flow.WebSocket?.CloseCode ?? 0);
        }
    }

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The relay is over already.
        }
    }

    /// <summary>
    /// WsWeb's side as the replay's client: sends what it was asked to resend, reads away whatever the server sends,
    /// and answers a close with the same code, as a client that has nothing more to say.
    /// </summary>
    private async Task RunClientAsync(HttpFlow flow, WebSocket socket, List<(bool IsText, byte[] Content)> resend, CancellationToken gone)
    {
        // One send at a time (WebSocket's rule): the close reply waits for the message being sent.
        using var sending = new SemaphoreSlim(1, 1);
        var closing = 0;
        var sender = SendAllAsync();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), gone);
                if (result.MessageType != WebSocketMessageType.Close)
                {
                    continue;
                }

                Volatile.Write(ref closing, 1);
                await sending.WaitAsync(gone);
                try
                {
                    if (socket.State == WebSocketState.CloseReceived)
                    {
                        await socket.CloseOutputAsync(socket.CloseStatus ?? WebSocketCloseStatus.Empty, socket.CloseStatusDescription, gone);
                    }
                }
                finally
                {
                    sending.Release();
                }

                break;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The relay ended (or was killed) first: nothing left to answer.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            socket.Abort();
            await sender;
        }

        async Task SendAllAsync()
        {
            try
            {
                foreach (var (isText, content) in resend)
                {
                    await sending.WaitAsync(gone);
                    try
                    {
                        if (Volatile.Read(ref closing) == 1 || socket.State != WebSocketState.Open)
                        {
                            return;
                        }

                        await socket.SendAsync(content, isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary, endOfMessage: true, gone);
                    }
                    finally
                    {
                        sending.Release();
                    }
                }

                if (resend.Count > 0)
                {
                    LogResent(flow.Id, resend.Count);
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The flow ended before everything went out; what did go out is in its messages.
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: replaying flow {OriginalId} to {Host}:{Port}")]
    private partial void LogStarted(string flowId, string originalId, string host, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: the replay failed: {Reason}")]
    private partial void LogFailed(string flowId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: the server refused the replayed handshake with {Status}")]
    private partial void LogRefused(string flowId, int status);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Flow {FlowId}: resent {Count} client messages")]
    private partial void LogResent(string flowId, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: the replay ended with {CloseCode}")]
    private partial void LogEnded(string flowId, int closeCode);

    [LoggerMessage(Level = LogLevel.Error, Message = "Flow {FlowId}: the replay failed unexpectedly")]
    private partial void LogUnexpected(string flowId, Exception exception);
}
