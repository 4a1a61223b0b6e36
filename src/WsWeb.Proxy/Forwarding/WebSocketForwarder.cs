using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Addons;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Relays a WebSocket handshake upstream and, on 101, both legs through a <see cref="WebSocketRelay"/>.
/// A refusal (any other status) is relayed to the client as it came and recorded.
/// </summary>
internal sealed partial class WebSocketForwarder(
    UpstreamConnector upstream,
    FlowStore store,
    AddonPipeline addons,
    LiveRelays live,
    Rewriting.RequestRewrites rewrites,
    ProxyOptions options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<WebSocketForwarder> logger)
{
    private readonly RelaySettings _settings = new() { MaxMessageSize = options.MaxMessageSize };

    public async Task ForwardAsync(HttpContext context, HttpFlow flow, ProxyTarget target)
    {
        if (live.ShuttingDown)
        {
            flow.Error = "WsWeb is shutting down; no new WebSocket is relayed.";
            await ProxyRequestHandler.WritePlainAsync(context.Response, StatusCodes.Status503ServiceUnavailable, flow.Error);
            store.FlowUpdated(flow);
            return;
        }

        // The method goes as sent (the server decides what a non-GET upgrade gets), so the wire and the record agree.
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), target.ConnectUri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        // Extensions are negotiated per leg: upstream we offer only the permessage-deflate offers we can
        // honour, and an extension we do not implement is never offered (we could not relay its frames).
        Headers.CopyRequest(context.Request.Headers, request, content: null, skip: IsExtensionsHeader);
        // Only the protocol we can relay is asked for, spelled as the client spelled it.
        request.Headers.Connection.Add("Upgrade");
        request.Headers.TryAddWithoutValidation("Upgrade", Headers.WebSocketUpgradeToken(context.Request.Headers.Upgrade));
        var clientOffers = PerMessageDeflateNegotiation.ParseOffers(string.Join(", ", context.Request.Headers.SecWebSocketExtensions.ToArray()));
        var upstreamOffer = PerMessageDeflateNegotiation.BuildUpstreamOffer(clientOffers);
        if (upstreamOffer is not null)
        {
            request.Headers.TryAddWithoutValidation("Sec-WebSocket-Extensions", upstreamOffer);
        }
        request.Options.Set(UpstreamConnector.ServerConnKey, flow.ServerConn);
        target.Describe(request);
        var upstreamSocket = new StrongBox<System.Net.Sockets.Socket?>();
        request.Options.Set(UpstreamConnector.SocketKey, upstreamSocket);

        // Until the relay runs, shutdown gives up on the handshake (a 503); from then on RelayShutdown closes it with 1001.
        using var exchange = ProxyRequestHandler.Exchange(context, lifetime);
        using var response = await ClientDeparture.SendAsync(upstream, request, target.UseTls, context, flow, watch: true, time, exchange.Token);
        if (response is null)
        {
            return;
        }

        // A 101 that arrives once shutdown began would start a relay after RelayShutdown sent its 1001s.
        exchange.Token.ThrowIfCancellationRequested();

        var now = Timestamps.Now(time);
        flow.Request.TimestampEnd = now;
        var recorded = Headers.RecordResponse(response, now);

        if (response.StatusCode != HttpStatusCode.SwitchingProtocols)
        {
            await RelayRefusalAsync(context, flow, response, recorded, upstreamSocket, exchange.Token);
            return;
        }

        var upstreamStream = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        await using var upstreamLease = upstreamStream;
        var serverExtensions = response.Headers.TryGetValues("Sec-WebSocket-Extensions", out var values) ? string.Join(", ", values) : null;
        var sentOffers = PerMessageDeflateNegotiation.ParseOffers(upstreamOffer);
        if (!PerMessageDeflateNegotiation.TryParseResponse(serverExtensions, sentOffers, out var upstreamDeflate, out var extensionError))
        {
            // The server accepted something we never offered: neither leg could be relayed faithfully. The client
            // gets a 502, and so does the flow's record; the error names the server's 101.
            flow.Error = $"Upstream answered the WebSocket handshake with 101 and unusable extensions: {extensionError}";
            await ProxyRequestHandler.WritePlainAsync(context.Response, StatusCodes.Status502BadGateway, flow.Error);
            flow.Response = ProxyRequestHandler.OwnAnswer(StatusCodes.Status502BadGateway, flow.Error, time);
            store.FlowUpdated(flow);
            return;
        }

        var clientDeflate = PerMessageDeflateNegotiation.SelectClientResponse(clientOffers, upstreamDeflate);
        context.Response.StatusCode = StatusCodes.Status101SwitchingProtocols;
        Headers.CopyResponse(response, context.Response, skip: IsExtensionsHeader);

        // The server's Upgrade goes back as it came, or not at all: a client must then fail the handshake
        // (RFC 6455 §4.1), which is its call, not ours to paper over. Connection is Kestrel's: UpgradeAsync sets
        // "Connection: Upgrade" itself whatever the server sent.
        if (response.Headers.NonValidated.TryGetValues("Upgrade", out var upgrade))
        {
            context.Response.Headers.Upgrade = new Microsoft.Extensions.Primitives.StringValues([.. upgrade]);
        }

        if (clientDeflate is { } accepted)
        {
            context.Response.Headers.SecWebSocketExtensions = accepted.HeaderValue;
        }

        flow.Response = recorded;
        rewrites.ApplyToResponse(flow, context.Response.Headers);
        var clientStream = await context.Features.Get<IHttpUpgradeFeature>()!.UpgradeAsync();

        recorded.TimestampEnd = Timestamps.Now(time);
        flow.WebSocket = store.CreateWebSocketData();
        store.FlowUpdated(flow);

        // On our own transport the relay reads and writes the connection itself (the HTTP layer is done with
        // it after the 101): large payloads then skip Kestrel's upgrade stream and its pipes both ways.
        using var client = context.Features.Get<ProxyConnectionFeature>()?.Raw is { } raw
            ? CreateLeg("client", isClient: true, raw, ownsPipes: false, context.Abort, clientDeflate?.Parameters, context.Features.Get<ProxyConnectionFeature>()?.Connection?.Socket)
            : CreateLeg("client", isClient: true, clientStream, context.Abort, clientDeflate?.Parameters);
        using var server = CreateServerLeg(upstreamStream, upstreamDeflate, upstreamSocket.Value);
        await RelayAsync(flow, client, server, context.RequestAborted);
    }

    /// <summary>Relays <paramref name="flow"/> between its two legs until it ends, as one of the live relays.</summary>
    /// <param name="clientGone">Fires when the client's connection is gone (Kestrel's RequestAborted for a proxied client).</param>
    internal async Task RelayAsync(HttpFlow flow, RelayLeg client, RelayLeg server, CancellationToken clientGone)
    {
        var relay = new WebSocketRelay(flow, client, server, store, addons, time, _settings, logger);
        live.Add(relay);
        try
        {
            await relay.RunAsync(clientGone);
        }
        finally
        {
            live.Remove(relay);
            await client.CompleteAsync();
            await server.CompleteAsync();
            flow.ServerConn.TimestampEnd = Timestamps.Now(time);
        }
    }

    /// <summary>The server leg over an upgraded upstream connection, which the leg disposes when dropped.</summary>
    internal RelayLeg CreateServerLeg(Stream upstreamStream, DeflateParameters? deflate, System.Net.Sockets.Socket? socket) =>
        CreateLeg("server", isClient: false, upstreamStream, upstreamStream.Dispose, deflate, socket);

    /// <summary>A leg over pipes of its own on <paramref name="stream"/>, completed with the leg.</summary>
    private RelayLeg CreateLeg(string name, bool isClient, Stream stream, Action abort, DeflateParameters? deflate, System.Net.Sockets.Socket? socket = null) =>
        CreateLeg(name, isClient, OwnPipes(stream), ownsPipes: true, abort, deflate, socket);

    /// <param name="transport">The stream the leg may read and write directly, and the pipes over it.</param>
    /// <param name="ownsPipes">False for the connection's own pipes, which stay the connection's to complete.</param>
    /// <param name="deflate">The leg's permessage-deflate parameters; on the client leg we are the server.</param>
    /// <param name="socket">The peer's socket, when known (see <see cref="RelayLeg.Socket"/>).</param>
    private RelayLeg CreateLeg(string name, bool isClient, RawTransport transport, bool ownsPipes, Action abort, DeflateParameters? deflate, System.Net.Sockets.Socket? socket = null) => new(
        name,
        isClient,
        transport.Pipe.Input,
        transport.Pipe.Output,
        abort,
        deflate?.CreateInflater(asServer: isClient, _settings.MaxMessageSize),
        deflate?.CreateDeflater(asServer: isClient),
        transport.Stream,
        ownsPipes,
        socket);

    private static RawTransport OwnPipes(Stream stream) => new(stream, new DuplexPipe(
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 8 * 1024, leaveOpen: true)),
        PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true))));

    /// <summary>A refused handshake's answer goes to the client as a plain HTTP response does: the same framing checks and relay.</summary>
    private async Task RelayRefusalAsync(HttpContext context, HttpFlow flow, HttpResponseMessage response, HttpResponseData recorded, StrongBox<System.Net.Sockets.Socket?> upstreamSocket, CancellationToken cancellationToken)
    {
        LogRefused(flow.Id, (int)response.StatusCode);
        context.Response.StatusCode = (int)response.StatusCode;
        var framing = ProxyRequestHandler.CopyResponseHead(context.Request, response, context.Response, upstreamSocket);
        flow.Response = recorded;
        rewrites.ApplyToResponse(flow, context.Response.Headers);
        var recorder = new BodyRecorder(options.BodyCaptureLimit);
        await ProxyRequestHandler.RelayBodyAsync(response, framing, context.Response, recorder, cancellationToken);
        recorder.ApplyTo(flow.Response!);
        flow.Response!.TimestampEnd = Timestamps.Now(time);
        store.FlowUpdated(flow);
    }

    private static bool IsExtensionsHeader(string name) =>
        string.Equals(name, "Sec-WebSocket-Extensions", StringComparison.OrdinalIgnoreCase);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: upstream refused the WebSocket upgrade with {Status}")]
    private partial void LogRefused(string flowId, int status);
}
