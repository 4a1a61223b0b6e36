using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WsWeb.Proxy.Listener;

/// <summary>Marks the proxy's listen endpoints, so <see cref="ProxyTransportFactory"/> binds them and Kestrel's socket transport binds the rest.</summary>
internal sealed class ProxyEndPoint(IPAddress address, int port) : IPEndPoint(address, port);

/// <summary>
/// Kestrel transport for the proxy listener. Kestrel's socket transport reads ahead into its own pipe
/// from a loop of its own, so nothing above it may ever touch the socket. This one reads only when asked
/// (a <see cref="PipeReader"/> over the connection's stream), so once the HTTP layer has handed over an
/// upgraded WebSocket, the relay can move large payloads straight between the socket and the captured
/// message without two more copies through Kestrel's pipes (see <see cref="RawTransport"/>).
/// </summary>
internal sealed partial class ProxyTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>How long accepting pauses when the process is out of file descriptors.</summary>
    internal static readonly TimeSpan DescriptorBackoff = TimeSpan.FromMilliseconds(100);

    private readonly TimeProvider _time;
    private readonly OwnEndpoints? _own;
    private readonly ILogger _logger;
    private readonly ConnectionLimiter? _limiter;
    private long _accepted;
    private int _outOfDescriptors;

    public ProxyTransportFactory()
        : this(TimeProvider.System, NullLogger<ProxyTransportFactory>.Instance)
    {
    }

    public ProxyTransportFactory(TimeProvider time, ILogger<ProxyTransportFactory> logger)
        : this(time, logger, limiter: null)
    {
    }

    /// <param name="limiter">The proxy listener's limiter, whose socket slots gate the accepts (see <see cref="GatedListener"/>).</param>
    internal ProxyTransportFactory(TimeProvider time, ILogger<ProxyTransportFactory> logger, ConnectionLimiter? limiter)
    {
        _time = time;
        _logger = logger;
        _limiter = limiter;
    }

    public ProxyTransportFactory(TimeProvider time, ILogger<ProxyTransportFactory> logger, ConnectionLimiters limiters, OwnEndpoints own)
        : this(time, logger, limiters?.Proxy)
    {
        _own = own;
    }

    /// <summary>Takes the next connection off a listening socket (a seam: tests stand in for the kernel running out of descriptors).</summary>
    internal Func<Socket, CancellationToken, ValueTask<Socket>> AcceptSocket { get; init; } = static (socket, cancellationToken) => socket.AcceptAsync(cancellationToken);

    /// <summary>Connections accepted by this transport so far (tells which transport serves the proxy).</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    public bool CanBind(EndPoint endpoint) => endpoint is ProxyEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var requested = endpoint as ProxyEndPoint ?? throw new NotSupportedException($"{endpoint} is not a proxy endpoint.");
        var socket = new Socket(requested.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (requested.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(requested);
            socket.Listen(512);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(ex.Message, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var bound = (IPEndPoint)socket.LocalEndPoint!;
        _own?.Bound(bound, proxy: true);
        IConnectionListener listener = new Listener(this, socket, new ProxyEndPoint(bound.Address, bound.Port));
        return ValueTask.FromResult(_limiter is null ? listener : new GatedListener(listener, _limiter));
    }

    private void OutOfDescriptors(SocketError error)
    {
        if (Interlocked.Exchange(ref _outOfDescriptors, 1) == 0)
        {
            LogOutOfDescriptors(error);
        }
    }

    private void DescriptorsBack()
    {
        if (Volatile.Read(ref _outOfDescriptors) != 0 && Interlocked.Exchange(ref _outOfDescriptors, 0) != 0)
        {
            LogDescriptorsBack();
        }
    }

    // The exception's text is no help: .NET maps EMFILE and ENFILE to one SocketError and words it as ENFILE.
    [LoggerMessage(1, LogLevel.Warning, "The proxy listener cannot accept connections ({Error}): the process is out of file descriptors (ulimit -n) or the kernel out of memory. Accepting pauses until some connections close.")]
    private partial void LogOutOfDescriptors(SocketError error);

    [LoggerMessage(2, LogLevel.Information, "The proxy listener accepts connections again.")]
    private partial void LogDescriptorsBack();

    private sealed class Listener(ProxyTransportFactory factory, Socket socket, EndPoint endPoint) : IConnectionListener
    {
        public EndPoint EndPoint => endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                try
                {
                    var accepted = await factory.AcceptSocket(socket, cancellationToken);
                    accepted.NoDelay = true;
                    Interlocked.Increment(ref factory._accepted);
                    factory.DescriptorsBack();
                    return new StreamConnection(accepted);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted)
                {
                    return null;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    // Out of file descriptors (EMFILE, ENFILE) or kernel memory: the connection stays queued, so
                    // retrying at once fails at once, a loop that burns a core while the process starves. Wait for
                    // some to close instead; the waiting clients sit in the listen backlog meanwhile.
                    factory.OutOfDescriptors(ex.SocketErrorCode);
                    try
                    {
                        await Task.Delay(DescriptorBackoff, factory._time, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }
                }
                catch (SocketException)
                {
                    // A client that reset before we accepted it: take the next one.
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>One accepted proxy connection: pipes that read and write the socket's stream only when used.</summary>
internal sealed class StreamConnection : ConnectionContext
{
    private static long s_lastId;

    private readonly Socket _socket;
    private readonly CancellationTokenSource _closed = new();
    private int _disposed;
    private int _aborted;

    public StreamConnection(Socket socket)
    {
        _socket = socket;
        Stream = new NetworkStream(socket, ownsSocket: false);
        var input = PipeReader.Create(Stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        var output = PipeWriter.Create(Stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true));
        Transport = new DuplexPipe(input, new KestrelOutput(output, () => Abort(new ConnectionAbortedException("The client connection is gone."))));
        Raw = new RawTransport(Stream, new DuplexPipe(input, output));
        ConnectionId = "P" + Interlocked.Increment(ref s_lastId).ToString("X8", System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
    }

    /// <summary>The accepted socket (for watching it while nothing reads it).</summary>
    public Socket Socket => _socket;

    /// <summary>The socket's stream under <see cref="Transport"/>.</summary>
    public NetworkStream Stream { get; }

    /// <summary>The stream and the pipes over it, as the relay may use them after an upgrade.</summary>
    public RawTransport Raw { get; }

    public override IDuplexPipe Transport { get; set; }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    /// <summary>True once <see cref="Abort"/> ran: set at once, while Kestrel hears of it a little later.</summary>
    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    public override void Abort(ConnectionAbortedException abortReason)
    {
        // Closing the socket fails whatever read or write is pending on it; then tell Kestrel.
        Volatile.Write(ref _aborted, 1);
        _socket.Dispose();
        Closed();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Raw.Pipe.Input.CompleteAsync();
        try
        {
            await Raw.Pipe.Output.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Completing flushes; the peer may be gone already.
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed by the peer or aborted.
        }

        _socket.Dispose();

        // Disposal is the end: fire ConnectionClosed here (Abort defers it) so it is never lost to the dispose below.
        Cancel(_closed);
        _closed.Dispose();
    }

    private void Closed()
    {
        try
        {
            // Off this thread: Kestrel's callbacks on ConnectionClosed must not run inside Abort.
            ThreadPool.UnsafeQueueUserWorkItem(static cts => Cancel(cts), _closed, preferLocal: false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static void Cancel(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}

/// <summary>
/// The innermost stream of a proxy connection (the socket's, or the TLS stream for an intercepted tunnel)
/// and the pipes over it that the HTTP layer read the request from. After an upgrade the relay uses
/// both directly instead of Kestrel's upgrade stream: large payloads go between the stream and the message.
/// </summary>
internal sealed record RawTransport(Stream Stream, IDuplexPipe Pipe);

internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
{
    public PipeReader Input { get; } = input;

    public PipeWriter Output { get; } = output;
}
