using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// A listener that accepts only when its <see cref="ConnectionLimiter"/> has a socket slot free, so the descriptors
/// its connections hold stay bounded however fast clients connect (see the limiter's remarks).
/// </summary>
internal sealed class GatedListener(IConnectionListener inner, ConnectionLimiter limiter) : IConnectionListener
{
    // Kestrel waits for the accept loop to end before it closes the open connections, and those hold the slots:
    // unbinding must end a wait for one.
    private readonly CancellationTokenSource _unbound = new();

    public EndPoint EndPoint => inner.EndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
            await limiter.WaitToAcceptAsync(stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return null;
        }

        ConnectionContext? connection = null;
        try
        {
            connection = await inner.AcceptAsync(cancellationToken);
            return connection;
        }
        finally
        {
            if (connection is null)
            {
                limiter.ReturnSlot();
            }
            else
            {
                limiter.TookSlot(connection);
            }
        }
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        await _unbound.CancelAsync();
        await inner.UnbindAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _unbound.CancelAsync();
        await inner.DisposeAsync();
        _unbound.Dispose();
    }
}

/// <summary>Marks the web listener's endpoints, so <see cref="WebTransportFactory"/> binds them.</summary>
internal sealed class WebEndPoint(IPAddress address, int port) : IPEndPoint(address, port);

/// <summary>Kestrel's socket transport for the web listener, gated by the web listener's <see cref="ConnectionLimiter"/>.</summary>
internal sealed class WebTransportFactory(IOptions<SocketTransportOptions> options, ILoggerFactory loggers, ConnectionLimiters limiters, OwnEndpoints own)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets = new(options, loggers);

    public bool CanBind(EndPoint endpoint) => endpoint is WebEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = await _sockets.BindAsync(endpoint, cancellationToken);
        if (listener.EndPoint is IPEndPoint bound)
        {
            own.Bound(bound, proxy: false);
        }

        return limiters.Web is { } limiter ? new GatedListener(listener, limiter) : listener;
    }
}
