using Microsoft.AspNetCore.Http;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Notices a client that closes its connection while the proxy waits for the server's answer. The proxy's
/// transport reads only when asked (see <see cref="StreamConnection"/>), so nothing else would: the upstream
/// request would run on, holding both connections, until the server answered, if ever. The client's socket is
/// watched (<see cref="PeerWatch"/>), not read: bytes it sends meanwhile stay for Kestrel, under TCP's backpressure.
/// </summary>
internal static class ClientDeparture
{
    /// <summary>Sends <paramref name="request"/> upstream; when <paramref name="watch"/>, gives up as soon as the client leaves.</summary>
    /// <param name="cancellationToken">The exchange's token (the client aborted, or shutdown began: <see cref="ProxyRequestHandler.Exchange"/>).</param>
    /// <returns>The response, or null when the client left first (recorded on the flow, connection aborted).</returns>
    public static async Task<HttpResponseMessage?> SendAsync(
        UpstreamConnector upstream, HttpRequestMessage request, bool useTls, HttpContext context, HttpFlow flow, bool watch, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!watch || context.Features.Get<ProxyConnectionFeature>()?.Connection is not { } connection)
        {
            return await upstream.SendAsync(request, useTls, cancellationToken);
        }

        using var gone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var left = WatchAsync(connection, time, gone, watching.Token);
        try
        {
            return await upstream.SendAsync(request, useTls, gone.Token);
        }
        catch (OperationCanceledException) when (left.IsCompletedSuccessfully && left.Result)
        {
            flow.Error = "The client closed the connection before the server answered.";
            context.Abort();
            return null;
        }
        finally
        {
            await watching.CancelAsync();
            await left;
        }
    }

    private static async Task<bool> WatchAsync(StreamConnection connection, TimeProvider time, CancellationTokenSource gone, CancellationToken cancellationToken)
    {
        if (!await PeerWatch.LeftAsync(connection.Socket, time, cancellationToken))
        {
            return false;
        }

        await gone.CancelAsync();
        return true;
    }
}
