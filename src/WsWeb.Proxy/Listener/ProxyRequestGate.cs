using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using WsWeb.Core.Flows;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// The first step of the request pipeline on the proxy listener, ahead of the forwarder: tells the connection's
/// <see cref="RequestHeadReader"/> how Kestrel frames each request's body, so it knows where the next head starts,
/// and refuses a CONNECT that is not the first request on its connection.
/// </summary>
internal sealed partial class ProxyRequestGate(FlowStore store, TimeProvider time, ILogger<ProxyRequestGate> logger)
{
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<ProxyConnectionFeature>() is not { } connection)
        {
            return RequestHeadLimits.RefuseOnWebListener(context, out var refused) ? refused : next(context);
        }

        connection.ApplicationSawRequest = true;
        var heads = connection.Heads;
        if (HttpMethods.IsConnect(context.Request.Method))
        {
            // The connection middleware answers a CONNECT only as the first request: a later one would need
            // Kestrel to give up a connection in the middle of its HTTP/1.1 loop, and the tunnel's bytes must
            // never be parsed as requests.
            heads?.StopRewriting();
            return RefuseLaterConnectAsync(context, connection);
        }

        if (heads is null)
        {
            return next(context);
        }

        var upgradable = context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true;
        heads.RequestStarted(context.Request.ContentLength, context.Request.Headers.TransferEncoding.Count > 0, upgradable);
        return upgradable ? UpgradeAsync(context, next, heads) : next(context);
    }

    private static async Task UpgradeAsync(HttpContext context, RequestDelegate next, RequestHeadReader heads)
    {
        await next(context);
        if (context.Response.StatusCode != StatusCodes.Status101SwitchingProtocols)
        {
            // A refused upgrade (the server said no, or was not there): Kestrel reads the next request as usual.
            heads.UpgradeDeclined();
        }
    }

    private async Task RefuseLaterConnectAsync(HttpContext context, ProxyConnectionFeature connection)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var message = $"CONNECT {target} must be the first request on a connection: WsWeb opens a tunnel only for a CONNECT on a fresh connection. Open a new connection for it.";
        ConnectRequest.TrySplitAuthority(target, out var host, out var port);
        connection.RecordRefusal(store, time, ProxyConnectionMiddleware.ConnectRequestData(host, port), "Refused: " + message);
        LogLateConnect(context.Connection.Id, target);

        context.Response.Headers.Connection = "close";
        await Forwarding.ProxyRequestHandler.WritePlainAsync(context.Response, StatusCodes.Status400BadRequest, message);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {ConnectionId}: refused CONNECT {Target}, which came after another request on the same connection")]
    private partial void LogLateConnect(string connectionId, string target);
}
