using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Notices a client that closes its connection while the proxy waits for the server's answer. The proxy's
/// transport reads only when asked (see <see cref="StreamConnection"/>), so nothing else would: the upstream
/// request would run on, holding both connections, until the server answered, if ever. Kestrel does not read
/// a connection while a request without a body waits for its response, so the watch may read it then.
/// </summary>
internal sealed class ClientDeparture
{
    private readonly PipeReader _input;
    private readonly CancellationTokenSource _gone;
    private readonly Task<bool> _watch;

    private ClientDeparture(PipeReader input, CancellationToken requestAborted)
    {
        _input = input;
        _gone = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        Token = _gone.Token;
        _watch = WatchAsync();
    }

    /// <summary>Cancelled when the client has gone, or the request was aborted.</summary>
    public CancellationToken Token { get; }

    public bool ClientGone { get; private set; }

    /// <summary>Sends <paramref name="request"/> upstream; when <paramref name="watch"/>, gives up as soon as the client leaves.</summary>
    /// <returns>The response, or null when the client left first (recorded on the flow, connection aborted).</returns>
    public static async Task<HttpResponseMessage?> SendAsync(UpstreamConnector upstream, HttpRequestMessage request, bool useTls, HttpContext context, HttpFlow flow, bool watch)
    {
        if (!watch || context.Features.Get<ProxyConnectionFeature>()?.Raw is not { } raw)
        {
            return await upstream.SendAsync(request, useTls, context.RequestAborted);
        }

        var departure = new ClientDeparture(raw.Pipe.Input, context.RequestAborted);
        try
        {
            return await upstream.SendAsync(request, useTls, departure.Token);
        }
        catch (OperationCanceledException) when (departure.ClientGone)
        {
            flow.Error = "The client closed the connection before the server answered.";
            context.Abort();
            return null;
        }
        finally
        {
            await departure.StopAsync();
        }
    }

    /// <returns>True when the watch ended on <see cref="PipeReader.CancelPendingRead"/>.</returns>
    private async Task<bool> WatchAsync()
    {
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync();
                if (result.IsCanceled)
                {
                    // Stopped: leave every byte for Kestrel's next read.
                    _input.AdvanceTo(result.Buffer.Start);
                    return true;
                }

                if (result.IsCompleted)
                {
                    // A FIN, as Kestrel's own transport reads it: the client is done with this connection.
                    _input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                    Gone();
                    return false;
                }

                // Bytes after the request (a pipelined request, early WebSocket frames): they stay for Kestrel
                // or the relay, and the watch ends here, since reading on would buffer whatever the client
                // sends without limit. RequestAborted still tells of a reset.
                _input.AdvanceTo(result.Buffer.Start);
                return false;
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            Gone();
            return false;
        }
    }

    private void Gone()
    {
        ClientGone = true;
        _gone.Cancel();
    }

    private async Task StopAsync()
    {
        var cancelled = false;
        if (!_watch.IsCompleted)
        {
            _input.CancelPendingRead();
            cancelled = true;
        }

        // If the watch ended on its own just before the cancel, the cancel is still pending and would reach
        // Kestrel's next read: take it here (TryRead returns and clears it), leaving every byte in place.
        if (!await _watch && cancelled && !ClientGone && _input.TryRead(out var pending))
        {
            _input.AdvanceTo(pending.Buffer.Start);
        }

        _gone.Dispose();
    }
}
