using System.Buffers;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// The request pipeline of the proxy listener: records every request as a flow and forwards it,
/// handing WebSocket upgrades to <see cref="WebSocketForwarder"/>. Requests on the web listener pass
/// straight to the dashboard.
/// </summary>
internal sealed partial class ProxyRequestHandler(
    UpstreamConnector upstream,
    WebSocketForwarder webSockets,
    WsWeb.Proxy.WebSockets.LiveRelays live,
    FlowStore store,
    OwnEndpoints ownEndpoints,
    Rewriting.RequestRewrites rewrites,
    ProxyOptions options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ProxyRequestHandler> logger)
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var connection = context.Features.Get<ProxyConnectionFeature>();
        if (connection is null)
        {
            await next(context);
            return;
        }

        if (!ProxyTarget.TryResolve(context, connection, options.Reverse, out var target, out var error))
        {
            await WritePlainAsync(context.Response, StatusCodes.Status400BadRequest, error!);
            return;
        }

        if (target.Reverse)
        {
            // The client addressed WsWeb; the server is told it was addressed (mitmproxy's default, keep_host_header off).
            context.Request.Headers.Host = options.Reverse!.Authority;
        }

        if (target.Port == 0)
        {
            // Connecting to port 0 can only fail; refused up front, as CONNECT host:0 is.
            await WritePlainAsync(context.Response, StatusCodes.Status400BadRequest,
                $"'{target.Scheme}://{target.Host}:0' names port 0, which no server listens on; a port is between 1 and 65535.");
            return;
        }

        if (connection.Heads?.HeadConnection is { } sentConnection && !string.Equals(sentConnection, context.Request.Headers.Connection, StringComparison.Ordinal))
        {
            // Kestrel reduced the value to the tokens it acts on (it decided keep-alive and upgrade already): the flow
            // records it as sent, and the fields it names stay off the upstream request (Headers.CopyRequest).
            context.Request.Headers.Connection = sentConnection;
        }

        var flow = CreateFlow(context, connection, target);

        // --block-list, --map-remote and --modify-headers, in mitmproxy's order, before the flow is shown: its record
        // says where the request really went and what it carried.
        var rewritten = rewrites.Rewrite(flow, context.Request.Headers, ref target);

        flow.IsLive = true; // before Add: the store reads it under its lock, and a flow it sees as finished may be evicted to make room
        store.Add(flow);
        using var killable = live.TrackExchange(flow, context.Abort);
        try
        {
            if (ownEndpoints.IsOwn(target.Host, target.Port))
            {
                throw new SelfTargetException($"{target.Host}:{target.Port} is one of WsWeb's own listeners.");
            }

            if (Headers.HasContentLengthBesideTransferEncoding(context.Request.Headers, connection.Heads?.HeadHadContentLength))
            {
                await RefuseContentLengthBesideTransferEncodingAsync(context, flow);
                return;
            }

            if (connection.Heads?.HeadContentLengthMalformed == true)
            {
                await RefuseFramingAsync(context, flow, "WsWeb refuses a request whose Content-Length is not a plain decimal number: "
                    + "RFC 9110 §8.6 allows digits only, and a sign or other characters could make the server read the body's length differently.");
                return;
            }

            if (Headers.ReadTransferCoding(context.Request.Headers.TransferEncoding) is TransferCoding.Unsupported or TransferCoding.UntilClose)
            {
                // Kestrel took chunked off the end already; what is left, mitmproxy refuses too (400, connection closed).
                await RefuseFramingAsync(context, flow, $"WsWeb refuses a request with Transfer-Encoding '{Headers.JoinCodings(context.Request.Headers.TransferEncoding)}': "
                    + "as mitmproxy, it relays a request body that is chunked, alone or after one of gzip, deflate and compress.");
                return;
            }

            // After the framing checks: a request whose body's end is in doubt gets its 400 whatever the block list says.
            if (rewritten.BlockStatus is { } status)
            {
                await BlockAsync(context, flow, status);
                return;
            }

            if (rewritten.Error is { } rewriteError)
            {
                await RefuseAsync(context, flow, StatusCodes.Status502BadGateway, rewriteError);
                return;
            }

            if (IsWebSocketUpgrade(context))
            {
                await webSockets.ForwardAsync(context, flow, target);
            }
            else
            {
                await ForwardHttpAsync(context, flow, target, connection);
            }
        }
        catch (Exception ex) when (lifetime.ApplicationStopping.IsCancellationRequested && !connection.ClientGone
            && !context.RequestAborted.IsCancellationRequested && Find<OperationCanceledException>(ex) is not null)
        {
            // Shutdown gave up on the exchange (see Exchange): the client hears why instead of the bare close Kestrel
            // would give it once the host's 30 s shutdown timeout ran out.
            await StoppedAsync(context, flow, target);
        }
        catch (Exception ex) when (!connection.ClientGone && IsUpstreamFailure(ex, context))
        {
            await FailAsync(context, flow, target, ex);
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested || connection.ClientGone)
        {
            // The client went away mid-exchange; its connection is already aborted, so there is nobody to answer.
            flow.Error ??= "The client closed the connection before the response was complete.";
            store.FlowUpdated(flow);
        }
        finally
        {
            flow.Request.TimestampEnd ??= Timestamps.Now(time);
            if (flow.IsLive)
            {
                store.FlowEnded(flow);
            }
        }
    }

    /// <summary>
    /// The token an exchange with a server waits on: the client leaving, or shutdown beginning. A server that never
    /// answers (or stops sending its body) would otherwise hold the exit until the host's shutdown timeout; the
    /// README's promise is that one stuck peer cannot.
    /// </summary>
    internal static CancellationTokenSource Exchange(HttpContext context, IHostApplicationLifetime lifetime) =>
        CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);

    private async Task StoppedAsync(HttpContext context, HttpFlow flow, ProxyTarget target)
    {
        if (!context.Response.HasStarted)
        {
            flow.Error = $"WsWeb is shutting down; it stopped waiting for {target.Host}:{target.Port} to answer.";
            LogStopped(flow.Id, flow.Error);
            context.Response.Clear();
            CloseAfterAnswer(context);
            await WritePlainAsync(context.Response, StatusCodes.Status503ServiceUnavailable, flow.Error);
        }
        else
        {
            // The head went out already: all the client can be told is that the body ends early.
            flow.Error = $"WsWeb shut down while relaying the response of {target.Host}:{target.Port}; the client got part of its body.";
            LogStopped(flow.Id, flow.Error);
            context.Abort();
        }

        store.FlowUpdated(flow);
    }

    /// <summary>
    /// Closes the client's connection after any answer that goes out before its request body was read to the end (an
    /// early 401 or 417 from the server, a 502 when the server hung up mid-upload). What the client sends after that
    /// answer may be the rest of the body or, from a client that waited for 100 Continue and never sent it, its next
    /// request: kept open, the connection would take one for the other (RFC 9110 §10.1.1, RFC 9112 §9.3: read and
    /// discard the body, or close). With <c>Connection: close</c> on the answer, Kestrel reads no further request on it.
    /// </summary>
    private static void CloseIfBodyUnread(HttpContext context, BodyRecorder requestBody) =>
        context.Response.OnStarting(static state =>
        {
            var (context, body) = ((HttpContext, BodyRecorder))state;
            if (!body.Complete)
            {
                context.Response.Headers.Connection = "close";
            }

            return Task.CompletedTask;
        }, (context, requestBody));

    /// <summary>
    /// Closes the connection once an answer given because of shutdown is out. Kestrel would otherwise read the rest
    /// of an unfinished request body first (for up to 5 s of a client that trickles it), and a body read that shutdown
    /// cancelled cannot be read on: Kestrel would log that as an error with its stack.
    /// </summary>
    internal static void CloseAfterAnswer(HttpContext context)
    {
        context.Response.Headers.Connection = "close";
        context.Response.OnCompleted(static state =>
        {
            ((HttpContext)state).Abort();
            return Task.CompletedTask;
        }, context);
    }

    private HttpFlow CreateFlow(HttpContext context, ProxyConnectionFeature connection, ProxyTarget target)
    {
        var now = Timestamps.Now(time);
        var request = context.Request;
        var recorded = new HttpRequestData
        {
            Method = request.Method,
            Scheme = target.Scheme,
            Host = target.Host,
            Port = target.Port,
            Path = target.PathAndQuery,
            HttpVersion = request.Protocol,
            Headers = Headers.Record(request.Headers),
            TimestampStart = now,
        };
        return new HttpFlow(recorded, now)
        {
            ClientConn = connection.Client,
            ServerConn = new WsWeb.Core.Flows.ConnectionInfo { Address = $"{target.Host}:{target.Port}" },
        };
    }

    private static bool IsWebSocketUpgrade(HttpContext context) =>
        context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true
        && Headers.WebSocketUpgradeToken(context.Request.Headers.Upgrade) is not null;

    /// <summary>
    /// Refuses a request with both Content-Length and Transfer-Encoding, as mitmproxy does (RFC 9112 §6.3 allows it):
    /// servers that disagree on which one frames the body are how requests are smuggled past a proxy.
    /// </summary>
    private Task RefuseContentLengthBesideTransferEncodingAsync(HttpContext context, HttpFlow flow)
    {
        // The record shows the header the client sent, not the name Kestrel moved it to.
        var recorded = flow.Request.Headers;
        for (var i = 0; i < recorded.Count; i++)
        {
            if (string.Equals(recorded[i].Key, Headers.KestrelMovedContentLength, StringComparison.OrdinalIgnoreCase))
            {
                recorded[i] = new(Microsoft.Net.Http.Headers.HeaderNames.ContentLength, recorded[i].Value);
            }
        }

        return RefuseFramingAsync(context, flow, "WsWeb refuses a request with both Content-Length and Transfer-Encoding: the two would frame its body differently (RFC 9112 §6.3).");
    }

    /// <summary>
    /// Answers a request --block-list matched, as mitmproxy does: with the status and an empty body, or for 444 by
    /// closing the connection without a word. Nothing reaches the server.
    /// </summary>
    private async Task BlockAsync(HttpContext context, HttpFlow flow, int status)
    {
        if (status == Rewriting.BlockSpec.NoResponse)
        {
            flow.Error = "Blocked by --block-list: the connection was closed without an answer (444).";
            LogClientFailed(flow.Id, flow.Error);
            context.Abort();
            return;
        }

        // The request's body is not read, so the connection cannot carry another request.
        context.Response.Headers.Connection = "close";
        context.Response.StatusCode = status;
        context.Response.ContentLength = 0;
        await context.Response.CompleteAsync();
        flow.Response = Rewriting.RequestRewrites.BlockedAnswer(status, Timestamps.Now(time), connectionClose: true);
        store.FlowUpdated(flow);
    }

    /// <summary>Answers a request whose body framing WsWeb will not relay with 400, and closes the connection, as mitmproxy does.</summary>
    private Task RefuseFramingAsync(HttpContext context, HttpFlow flow, string text) =>
        RefuseAsync(context, flow, StatusCodes.Status400BadRequest, text);

    /// <summary>Answers a request WsWeb will not forward with <paramref name="status"/> and why, records both, and closes the connection.</summary>
    private async Task RefuseAsync(HttpContext context, HttpFlow flow, int status, string text)
    {
        flow.Error = text;
        LogClientFailed(flow.Id, text);

        // The body is left unread, and its end may be unknown: the connection cannot carry another request.
        context.Response.Headers.Connection = "close";
        await WritePlainAsync(context.Response, status, text);
        flow.Response = OwnAnswer(status, text, time);
        store.FlowUpdated(flow);
    }

    /// <summary>The flow's record of an answer WsWeb gave the client itself (see <see cref="WritePlainAsync"/>).</summary>
    internal static HttpResponseData OwnAnswer(int status, string text, TimeProvider time)
    {
        var content = System.Text.Encoding.UTF8.GetBytes(text + "\n");
        var now = Timestamps.Now(time);
        return new HttpResponseData
        {
            StatusCode = status,
            Reason = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status),
            Headers = [new("Content-Type", PlainText)],
            Content = content,
            ContentLength = content.Length,
            TimestampStart = now,
            TimestampEnd = now,
        };
    }

    private async Task ForwardHttpAsync(HttpContext context, HttpFlow flow, ProxyTarget target, ProxyConnectionFeature connection)
    {
        var request = context.Request;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = null;
        }

        using var exchange = Exchange(context, lifetime);
        var hasBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        var requestRecorder = new BodyRecorder(options.BodyCaptureLimit);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), target.ConnectUri)
        {
            Version = System.Net.HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = hasBody ? new RecordingStreamContent(request.Body, requestRecorder)
                : Headers.HasContentHeaders(request.Headers) ? new ByteArrayContent([])   // an empty body keeps its Content-Type and friends
                // SocketsHttpHandler sends a request without content again, on a new connection, when a reused one closes
                // before answering; a proxy must not repeat a POST on its own (RFC 9112 §9.3.1), as mitmproxy does not.
                // Empty content ("Content-Length: 0", which .NET writes for a bodiless POST anyway) is never resent.
                : !IsIdempotent(request.Method) ? new ByteArrayContent([])
                : null,
        };
        if (hasBody)
        {
            CloseIfBodyUnread(context, requestRecorder);
        }

        // Expect: 100-continue stays with this hop, as mitmproxy does: Kestrel answers 100 Continue itself once the body
        // is first read (as the request goes out), and the server gets the body at once. Forwarded, it let the server's
        // early final answer (417, 401) reach a client that never sent the body Kestrel still expected on the connection,
        // and a server that never sends 100 cost every upload SocketsHttpHandler's 1 s Expect100ContinueTimeout.
        Headers.CopyRequest(request.Headers, message, message.Content, static name => string.Equals(name, Microsoft.Net.Http.Headers.HeaderNames.Expect, StringComparison.OrdinalIgnoreCase));
        if (Headers.ReadTransferCoding(request.Headers.TransferEncoding) == TransferCoding.CodedThenChunked)
        {
            // Kestrel undid only the chunked framing: the body is still coded, so it goes on with the codings the client
            // named, as mitmproxy sends it; SocketsHttpHandler chunks it again because chunked is among them.
            message.Headers.TryAddWithoutValidation(Microsoft.Net.Http.Headers.HeaderNames.TransferEncoding, (IEnumerable<string?>)request.Headers.TransferEncoding);
        }

        message.Options.Set(UpstreamConnector.ServerConnKey, flow.ServerConn);
        var upstreamSocket = new System.Runtime.CompilerServices.StrongBox<Socket?>();
        message.Options.Set(UpstreamConnector.SocketKey, upstreamSocket);
        target.Describe(message);

        HttpResponseMessage? sent;
        try
        {
            // With a body, reading it tells of a reset, and a client may half-close once it has sent it: not watched.
            sent = await ClientDeparture.SendAsync(upstream, message, target.UseTls, context, flow, watch: !hasBody, time, exchange.Token);
        }
        finally
        {
            // Also when sending failed: a server that resets mid-upload leaves a flow showing how much went out.
            requestRecorder.ApplyTo(flow.Request);
        }

        using var response = sent;
        if (response is null)
        {
            return;
        }

        flow.Request.TimestampEnd = Timestamps.Now(time);
        if ((int)response.StatusCode is < 200 or > 599)
        {
            // HttpClient passes interim 1xx by; a final 1xx here is a 101 nobody asked for, or a status HTTP does not have.
            throw new UpstreamResponseException($"the server answered with status {(int)response.StatusCode}, which is no final answer to this request");
        }

        var recorded = Headers.RecordResponse(response, Timestamps.Now(time));
        context.Response.StatusCode = recorded.StatusCode;
        if (context.Features.Get<IHttpResponseFeature>() is { } responseFeature)
        {
            responseFeature.ReasonPhrase = response.ReasonPhrase;
        }

        // Recorded once it can be passed on: a head the client never gets (a 502 instead) is not the flow's response.
        var framing = CopyResponseHead(request, response, context.Response, upstreamSocket);
        flow.Response = recorded;
        rewrites.ApplyToResponse(flow, context.Response.Headers);
        store.FlowUpdated(flow);
        var responseRecorder = new BodyRecorder(options.BodyCaptureLimit);
        try
        {
            await RelayBodyAsync(response, framing, context.Response, responseRecorder, exchange.Token, connection);
        }
        finally
        {
            // Also when the copy broke off: the flow shows how much of the body was relayed.
            responseRecorder.ApplyTo(recorded);
            recorded.TimestampEnd = Timestamps.Now(time);
        }
    }

    /// <summary>
    /// How the response body is framed for the client, from the server's Transfer-Encoding read as mitmproxy reads it.
    /// SocketsHttpHandler has undone chunked when it was among the codings, and reads to the end of the connection when
    /// it was not; the codings before it are left on the body.
    /// </summary>
    /// <exception cref="UpstreamResponseException">Codings mitmproxy refuses too, or Content-Length beside a body that ends with the connection.</exception>
    private static TransferCoding ResponseFraming(HttpRequest request, HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (HttpMethods.IsHead(request.Method) || status is 204 or 304)
        {
            // No body to frame (RFC 9110 §6.4.1): as before, the Transfer-Encoding is hop-by-hop and goes no further.
            return TransferCoding.None;
        }

        var hasLength = response.Content.Headers.NonValidated.TryGetValues(Microsoft.Net.Http.Headers.HeaderNames.ContentLength, out var lengths);
        if (!response.Headers.NonValidated.TryGetValues(Microsoft.Net.Http.Headers.HeaderNames.TransferEncoding, out _))
        {
            if (hasLength && response.Content.Headers.ContentLength is null)
            {
                // SocketsHttpHandler could not read it ("5, 5" on one line), so it reads the body until the server closes,
                // while the client would be told a length: the exchange would hang on a server that keeps its connection.
                throw new UpstreamResponseException($"the server's {status} response cannot be forwarded: its Content-Length '{string.Join(", ", lengths)}' is not one number, "
                    + "so where its body ends is unclear (RFC 9112 §6.3); mitmproxy refuses it too.");
            }

            return TransferCoding.None;
        }

        if (hasLength)
        {
            // Anything between WsWeb and the server that frames by the Content-Length would read another response than
            // WsWeb does: the start of response-queue poisoning on a pooled connection (RFC 9112 §6.3, §11.2).
            throw new UpstreamResponseException($"the server's {status} response cannot be forwarded: it has both Content-Length and Transfer-Encoding, "
                + "which frame its body differently (RFC 9112 §6.3).");
        }

        if (response.Version == System.Net.HttpVersion.Version10)
        {
            throw new UpstreamResponseException($"the server's {status} response cannot be forwarded: it is HTTP/1.0 and has a Transfer-Encoding, which HTTP/1.0 does not have (RFC 9112 §6.1).");
        }

        var transferEncoding = Headers.ResponseTransferEncoding(response);
        var framing = Headers.ReadTransferCoding(transferEncoding);
        if (framing == TransferCoding.Unsupported)
        {
            throw new UpstreamResponseException($"the server's {status} response cannot be forwarded: its Transfer-Encoding '{Headers.JoinCodings(transferEncoding)}' is not one WsWeb relays "
                + "(as mitmproxy, it relays a body that is chunked, alone or after one of gzip, deflate and compress, and one of those codings alone until the server closes).");
        }

        return framing;
    }

    /// <summary>
    /// Checks how the server framed its response and copies its head to the client's response (not sent yet). A response
    /// WsWeb refuses (<see cref="UpstreamResponseException"/>, a 502) also closes its server connection, so the pool never
    /// hands a connection whose next bytes are in doubt to another client's request.
    /// </summary>
    /// <returns>How the body goes to the client (see <see cref="RelayBodyAsync"/>).</returns>
    internal static TransferCoding CopyResponseHead(HttpRequest request, HttpResponseMessage response, HttpResponse target, System.Runtime.CompilerServices.StrongBox<Socket?> upstreamSocket)
    {
        try
        {
            var framing = ResponseFraming(request, response);
            Headers.CopyResponse(response, target);
            if (framing is TransferCoding.CodedThenChunked or TransferCoding.UntilClose)
            {
                // The body is still coded: it goes out with the server's Transfer-Encoding, as mitmproxy relays it. Kestrel
                // then leaves chunked framing to us, and without chunked it closes the connection after the body.
                target.Headers.TransferEncoding = Headers.JoinCodings(Headers.ResponseTransferEncoding(response));
            }

            return framing;
        }
        catch (UpstreamResponseException)
        {
            upstreamSocket.Value?.Dispose();
            throw;
        }
    }

    /// <summary>Relays the response body as <see cref="CopyResponseHead"/> framed it, recording it as it goes.</summary>
    internal static async Task RelayBodyAsync(HttpResponseMessage response, TransferCoding framing, HttpResponse target, BodyRecorder recorder, CancellationToken cancellationToken, ProxyConnectionFeature? client = null)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var chunks = framing == TransferCoding.CodedThenChunked ? new ChunkedFraming(target.BodyWriter) : null;
        if (chunks is not null)
        {
            // Kestrel's body writer hands out no buffer before the response has started when the framing is the application's.
            await target.StartAsync(cancellationToken);
        }

        await CopyAsync(body, (Stream?)chunks ?? target.Body, recorder, cancellationToken, client);
        if (chunks is not null)
        {
            await chunks.EndAsync(cancellationToken);
        }
    }

    /// <summary>GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 §9.2.2): a connection that fails under them may carry them again.</summary>
    internal static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method)
        || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);

    /// <param name="sourceIsClient">Reading the client's request body: its failures are the client's (see <see cref="ClientBodyException"/>).</param>
    internal static async Task CopyAsync(Stream source, Stream destination, BodyRecorder recorder, CancellationToken cancellationToken, ProxyConnectionFeature? client = null, bool sourceIsClient = false)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = await ReadAsync(source, buffer, sourceIsClient, cancellationToken)) > 0)
            {
                recorder.Append(buffer.AsSpan(0, read));
                await WriteAsync(destination, buffer.AsMemory(0, read), sourceIsClient, cancellationToken);

                // Once the client is gone, writes to it are no-ops and reads of buffered upstream data complete
                // at once: neither looks at the token, so look here, or the copy drains the upstream.
                cancellationToken.ThrowIfCancellationRequested();
                if (client?.ClientGone == true)
                {
                    throw new OperationCanceledException("The client connection is gone.");
                }
            }

            recorder.Complete = true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async ValueTask<int> ReadAsync(Stream source, byte[] buffer, bool sourceIsClient, CancellationToken cancellationToken)
    {
        try
        {
            return await source.ReadAsync(buffer, cancellationToken);
        }
        catch (IOException ex) when (sourceIsClient && ex.InnerException is OverflowException)
        {
            // Kestrel reports a chunk size too large for a long as a plain IOException ("Bad chunk size data") around the
            // overflow, where other malformed chunks are a BadHttpRequestException: the body is malformed, the client did not leave.
            throw new BadHttpRequestException(ex.Message, StatusCodes.Status400BadRequest, ex);
        }
        catch (Exception ex) when (sourceIsClient && ex is IOException or SocketException)
        {
            throw new ClientBodyException(ex);
        }
    }

    private static async ValueTask WriteAsync(Stream destination, ReadOnlyMemory<byte> data, bool destinationIsServer, CancellationToken cancellationToken)
    {
        try
        {
            await destination.WriteAsync(data, cancellationToken);
            await destination.FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (destinationIsServer && ex is IOException or SocketException)
        {
            throw new UpstreamBodyException(ex);
        }
    }

    private static bool IsUpstreamFailure(Exception ex, HttpContext context) =>
        !context.RequestAborted.IsCancellationRequested
        && ex is HttpRequestException or SocketException or SelfTargetException or AuthenticationException or IOException or TaskCanceledException or UpstreamResponseException;

    private async Task FailAsync(HttpContext context, HttpFlow flow, ProxyTarget target, Exception ex)
    {
        var (status, text, clientFault) = Describe(ex, target);
        flow.Error = text;
        if (clientFault)
        {
            LogClientFailed(flow.Id, text);
        }
        else
        {
            LogUpstreamFailed(flow.Id, target.Host, target.Port, text);
        }

        if (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await WritePlainAsync(context.Response, status, text);

            // As in mitmproxy: no server answered, so the flow has an error and no response. A refusal of our own
            // listeners, or of a server's answer we could not pass on, is the answer the client got: the response.
            if (Find<SelfTargetException>(ex) is not null || Find<UpstreamResponseException>(ex) is not null)
            {
                flow.Response = OwnAnswer(status, text, time);
            }
        }
        else
        {
            context.Abort();
        }

        store.FlowUpdated(flow);
    }

    /// <returns>The answer for the client, and whether the client (not the server) is at fault.</returns>
    internal static (int Status, string Text, bool ClientFault) Describe(Exception ex, ProxyTarget target)
    {
        var self = Find<SelfTargetException>(ex);
        if (self is not null)
        {
            return (StatusCodes.Status403Forbidden, $"WsWeb refuses to proxy to its own listener: {self.Message}", false);
        }

        // Reading the client's body failed: the client is at fault, not the server.
        if (Find<BadHttpRequestException>(ex) is { } bad)
        {
            return (StatusCodes.Status400BadRequest, $"WsWeb could not read the client's request body: {bad.Message}", true);
        }

        if (Find<ClientBodyException>(ex) is not null || Find<Microsoft.AspNetCore.Connections.ConnectionResetException>(ex) is not null || Find<Microsoft.AspNetCore.Connections.ConnectionAbortedException>(ex) is not null)
        {
            return (StatusCodes.Status400BadRequest, "The client closed the connection before its request body was complete.", true);
        }

        var (status, text) = DescribeUpstream(ex, target);
        return (status, text, false);
    }

    private static (int Status, string Text) DescribeUpstream(Exception ex, ProxyTarget target)
    {
        if (Find<UpstreamCertificateException>(ex) is { } refused)
        {
            // A trust bundle helps only with the issuer; a wrong name or dates stay wrong whatever CA is given.
            var hint = refused.Message.Contains("not a trusted CA", StringComparison.Ordinal)
                ? "to accept it anyway, start WsWeb with --ssl-insecure, or give a private CA with --upstream-trust-bundle"
                : "to accept it anyway, start WsWeb with --ssl-insecure";
            return (StatusCodes.Status502BadGateway, $"TLS with {target.Host}:{target.Port} failed: {refused.Message} ({hint}).");
        }

        if (Find<AuthenticationException>(ex) is { } auth)
        {
            // Anything else (a TLS version, no TLS at all, a client certificate asked for): --ssl-insecure would not help.
            return (StatusCodes.Status502BadGateway, $"TLS with {target.Host}:{target.Port} failed: {auth.Message}");
        }

        if (Find<UpstreamBodyException>(ex) is { } body)
        {
            // HTTP/1.1 through SocketsHttpHandler reads no answer before the whole body is sent, so an early one
            // (413, 401) followed by a close cannot be relayed: say what may have happened instead.
            return (StatusCodes.Status502BadGateway, $"{target.Host}:{target.Port} closed the connection while WsWeb was sending the request body "
                + $"({Innermost(body).Message}); the server may have answered early and closed, an answer WsWeb can only relay once the whole body is sent.");
        }

        var socket = Find<SocketException>(ex);
        if (socket is not null && Find<HttpRequestException>(ex) is null or { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError })
        {
            return (StatusCodes.Status502BadGateway, $"WsWeb could not reach {target.Host}:{target.Port}: {socket.Message} ({socket.SocketErrorCode}).");
        }

        if (socket is not null)
        {
            return (StatusCodes.Status502BadGateway, $"{target.Host}:{target.Port} closed the connection before its answer was complete: {socket.Message} ({socket.SocketErrorCode}).");
        }

        if (ex is TaskCanceledException)
        {
            return (StatusCodes.Status504GatewayTimeout, $"{target.Host}:{target.Port} did not answer in time.");
        }

        if (Find<UpstreamResponseException>(ex) is { } unfit)
        {
            return (StatusCodes.Status502BadGateway, $"Upstream {target.Host}:{target.Port} failed: {unfit.Message}");
        }

        // HttpClient's own message is generic ("An error occurred while sending the request."); the innermost says what.
        var reason = Find<HttpRequestException>(ex) is not null ? Innermost(ex).Message : ex.Message;
        return (StatusCodes.Status502BadGateway, $"Upstream {target.Host}:{target.Port} failed: {reason}");
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }

        return ex;
    }

    private static T? Find<T>(Exception? ex)
        where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is T match)
            {
                return match;
            }
        }

        return null;
    }

    private const string PlainText = "text/plain; charset=utf-8";

    internal static async Task WritePlainAsync(HttpResponse response, int status, string text)
    {
        response.StatusCode = status;
        response.ContentType = PlainText;
        await response.WriteAsync(text + "\n");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: upstream {Host}:{Port} failed: {Reason}")]
    private partial void LogUpstreamFailed(string flowId, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: {Reason}")]
    private partial void LogStopped(string flowId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: the client's request failed: {Reason}")]
    private partial void LogClientFailed(string flowId, string reason);
}

/// <summary>Reading the client's request body failed (a reset, a closed connection): the client's fault, not the server's.</summary>
internal sealed class ClientBodyException(Exception inner) : IOException("The client's connection failed while it sent its request body.", inner);

/// <summary>Sending the request body to the server failed (it closed or reset the connection): the server's side, not the client's.</summary>
internal sealed class UpstreamBodyException(Exception inner) : IOException("The server's connection failed while WsWeb sent the request body.", inner);
