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
    private readonly Task _watch;

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

    private async Task WatchAsync()
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
                    return;
                }

                _input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                if (result.IsCompleted)
                {
                    // A FIN, as Kestrel's own transport reads it: the client is done with this connection.
                    Gone();
                    return;
                }

                // Bytes of a pipelined request: they stay for Kestrel; wait for more, or for the end.
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            Gone();
        }
    }

    private void Gone()
    {
        ClientGone = true;
        _gone.Cancel();
    }

    private async Task StopAsync()
    {
        if (!_watch.IsCompleted)
        {
            _input.CancelPendingRead();
        }

        await _watch;
        _gone.Dispose();
    }
}
