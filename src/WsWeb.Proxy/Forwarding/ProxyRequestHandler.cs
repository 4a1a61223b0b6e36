using System.Buffers;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
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
    FlowStore store,
    OwnEndpoints ownEndpoints,
    ProxyOptions options,
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

        if (!ProxyTarget.TryResolve(context, connection, out var target, out var error))
        {
            await WritePlainAsync(context.Response, StatusCodes.Status400BadRequest, error!);
            return;
        }

        var flow = CreateFlow(context, connection, target);
        store.Add(flow);
        flow.IsLive = true;
        try
        {
            if (ownEndpoints.IsOwn(target.Host, target.Port))
            {
                throw new SelfTargetException($"{target.Host}:{target.Port} is one of WsWeb's own listeners.");
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
        && string.Equals(context.Request.Headers.Upgrade.ToString(), "websocket", StringComparison.OrdinalIgnoreCase);

    private async Task ForwardHttpAsync(HttpContext context, HttpFlow flow, ProxyTarget target, ProxyConnectionFeature connection)
    {
        var request = context.Request;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = null;
        }

        var hasBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        var requestRecorder = new BodyRecorder(options.BodyCaptureLimit);
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), target.ConnectUri)
        {
            Version = System.Net.HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = hasBody ? new RecordingStreamContent(request.Body, requestRecorder)
                : Headers.HasContentHeaders(request.Headers) ? new ByteArrayContent([])   // an empty body keeps its Content-Type and friends
                : null,
        };
        Headers.CopyRequest(request.Headers, message, message.Content);
        message.Options.Set(UpstreamConnector.ServerConnKey, flow.ServerConn);
        target.Describe(message);

        // With a body, reading it tells of a reset, and a client may half-close once it has sent it: not watched.
        using var response = await ClientDeparture.SendAsync(upstream, message, target.UseTls, context, flow, watch: !hasBody, time);
        if (response is null)
        {
            return;
        }

        requestRecorder.ApplyTo(flow.Request);
        flow.Request.TimestampEnd = Timestamps.Now(time);
        if ((int)response.StatusCode is < 200 or > 599)
        {
            // HttpClient passes interim 1xx by; a final 1xx here is a 101 nobody asked for, or a status HTTP does not have.
            throw new UpstreamResponseException($"the server answered with status {(int)response.StatusCode}, which is no final answer to this request");
        }

        var recorded = Headers.RecordResponse(response, Timestamps.Now(time));
        flow.Response = recorded;
        store.FlowUpdated(flow);

        context.Response.StatusCode = recorded.StatusCode;
        if (context.Features.Get<IHttpResponseFeature>() is { } responseFeature)
        {
            responseFeature.ReasonPhrase = response.ReasonPhrase;
        }

        Headers.CopyResponse(response, context.Response);
        var responseRecorder = new BodyRecorder(options.BodyCaptureLimit);
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await CopyAsync(body, context.Response.Body, responseRecorder, context.RequestAborted, connection);
        }
        finally
        {
            // Also when the copy broke off: the flow shows how much of the body was relayed.
            responseRecorder.ApplyTo(recorded);
            recorded.TimestampEnd = Timestamps.Now(time);
        }
    }

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
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                await destination.FlushAsync(cancellationToken);

                // Once the client is gone, writes to it are no-ops and reads of buffered upstream data complete
                // at once: neither looks at the token, so look here, or the copy drains the upstream.
                cancellationToken.ThrowIfCancellationRequested();
                if (client?.ClientGone == true)
                {
                    throw new OperationCanceledException("The client connection is gone.");
                }
            }
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
        catch (Exception ex) when (sourceIsClient && ex is IOException or SocketException)
        {
            throw new ClientBodyException(ex);
        }
    }

    private static bool IsUpstreamFailure(Exception ex, HttpContext context) =>
        !context.RequestAborted.IsCancellationRequested
        && ex is HttpRequestException or SocketException or SelfTargetException or AuthenticationException or IOException or TaskCanceledException or UpstreamResponseException;

    private async Task FailAsync(HttpContext context, HttpFlow flow, ProxyTarget target, Exception ex)
    {
        var (status, text) = Describe(ex, target);
        flow.Error = text;
        LogUpstreamFailed(flow.Id, target.Host, target.Port, text);
        if (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await WritePlainAsync(context.Response, status, text);

            // As in mitmproxy: no server answered, so the flow has an error and no response. A refusal of our
            // own listeners is the proxy's deliberate answer and is recorded as the response.
            if (Find<SelfTargetException>(ex) is not null)
            {
                flow.Response = new HttpResponseData
                {
                    StatusCode = status,
                    Reason = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status),
                    TimestampStart = Timestamps.Now(time),
                    TimestampEnd = Timestamps.Now(time),
                };
            }
        }
        else
        {
            context.Abort();
        }

        store.FlowUpdated(flow);
    }

    private static (int Status, string Text) Describe(Exception ex, ProxyTarget target)
    {
        var self = Find<SelfTargetException>(ex);
        if (self is not null)
        {
            return (StatusCodes.Status403Forbidden, $"WsWeb refuses to proxy to its own listener: {self.Message}");
        }

        // Reading the client's body failed: the client is at fault, not the server.
        if (Find<BadHttpRequestException>(ex) is { } bad)
        {
            return (StatusCodes.Status400BadRequest, $"WsWeb could not read the client's request body: {bad.Message}");
        }

        if (Find<ClientBodyException>(ex) is not null || Find<Microsoft.AspNetCore.Connections.ConnectionResetException>(ex) is not null || Find<Microsoft.AspNetCore.Connections.ConnectionAbortedException>(ex) is not null)
        {
            return (StatusCodes.Status400BadRequest, "The client closed the connection before its request body was complete.");
        }

        var auth = Find<AuthenticationException>(ex);
        if (auth is not null)
        {
            return (StatusCodes.Status502BadGateway, $"TLS with {target.Host}:{target.Port} failed: {auth.Message} (to accept it anyway, start WsWeb with --ssl-insecure, or give a private CA with --upstream-trust-bundle).");
        }

        var socket = Find<SocketException>(ex);
        if (socket is not null)
        {
            return (StatusCodes.Status502BadGateway, $"WsWeb could not reach {target.Host}:{target.Port}: {socket.Message} ({socket.SocketErrorCode}).");
        }

        if (ex is TaskCanceledException)
        {
            return (StatusCodes.Status504GatewayTimeout, $"{target.Host}:{target.Port} did not answer in time.");
        }

        return (StatusCodes.Status502BadGateway, $"Upstream {target.Host}:{target.Port} failed: {ex.Message}");
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

    internal static async Task WritePlainAsync(HttpResponse response, int status, string text)
    {
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        await response.WriteAsync(text + "\n");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: upstream {Host}:{Port} failed: {Reason}")]
    private partial void LogUpstreamFailed(string flowId, string host, int port, string reason);
}

/// <summary>Reading the client's request body failed (a reset, a closed connection): the client's fault, not the server's.</summary>
internal sealed class ClientBodyException(Exception inner) : IOException("The client's connection failed while it sent its request body.", inner);
