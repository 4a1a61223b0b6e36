using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Keeps one listener's open connections under its limit (see <see cref="ConnectionLimits"/>): the first connection
/// middleware of the listener, so a refused connection costs nothing more than its accept. It counts a connection
/// for as long as it is open, an upgraded WebSocket or a CONNECT tunnel included.
/// </summary>
/// <remarks>
/// <para>
/// A refused connection still holds a descriptor from its accept until its close, and Kestrel accepts on a loop of its
/// own while the connections it accepted wait for the thread pool: under a flood on a busy machine the accepts ran far
/// ahead of the refusals' closes, until the process was out of descriptors (and a runtime that cannot open a file it
/// needs, an assembly loaded on first use, aborts). So the listener's transport also waits for a socket slot before each
/// accept (<see cref="GatedListener"/>): the limit's worth of open connections and <see cref="RefusalRoom"/> more being
/// refused. The clients beyond wait in the listen backlog until a refusal has closed.
/// </para>
/// Not Kestrel's <c>Limits.MaxConcurrentConnections</c>: that one stops counting a connection once it is upgraded
/// (its WebSocket is counted by <c>MaxConcurrentUpgradedConnections</c>, which refuses only when the upgrade is
/// accepted, after the server upstream has already switched protocols), closes a refused connection without a word,
/// and logs a warning for every one. Here a refused client reads why, and the log says it once per spell at the limit.
/// </remarks>
internal sealed partial class ConnectionLimiter
{
    private readonly int _limit;
    private readonly string _listener;
    private readonly byte[] _refusal;
    private readonly Func<EndPoint?, bool>? _refuseSilently;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _sockets;
    private int _open;
    private int _refusing;
    private long _refusedThisSpell;
    private long _refused;

    /// <param name="listener">"proxy" or "web", for the log and the answer.</param>
    /// <param name="why">What set the limit, for the log and the answer ("--max-connections").</param>
    /// <param name="refuseSilently">Clients refused without an answer (the proxy's blocked addresses learn nothing about it).</param>
    public ConnectionLimiter(string listener, int limit, string why, ILogger logger, Func<EndPoint?, bool>? refuseSilently = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        _listener = listener;
        _limit = limit;
        Why = why;
        _logger = logger;
        _refuseSilently = refuseSilently;
        RefusalRoom = Math.Max(ConnectionLimits.Minimum, limit / 4);
        _sockets = new SemaphoreSlim(limit + RefusalRoom, limit + RefusalRoom);
        var text = Encoding.UTF8.GetBytes(
            $"WsWeb already has {limit} connections open on its {listener} listener, its limit ({why}); this one is refused. Try again once others have closed.\n");
        _refusal = [.. Encoding.ASCII.GetBytes(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + $"Content-Length: {text.Length}\r\nConnection: close\r\n\r\n"), .. text];
    }

    public int Limit => _limit;

    public string Why { get; }

    /// <summary>Connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Connections refused since the start.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Sockets being refused at once, beyond <see cref="Limit"/>, before the transport stops accepting for a moment.</summary>
    public int RefusalRoom { get; }

    /// <summary>
    /// Socket slots taken: by the connections accepted and not ended yet, and by the accept waiting for the next
    /// client (at most <see cref="Limit"/> + <see cref="RefusalRoom"/>).
    /// </summary>
    public int SocketsInUse => _limit + RefusalRoom - _sockets.CurrentCount;

    /// <summary>Waits, before the transport accepts, until a socket slot is free.</summary>
    public Task WaitToAcceptAsync(CancellationToken cancellationToken) => _sockets.WaitAsync(cancellationToken);

    /// <summary>The transport accepted <paramref name="connection"/> on a slot: the slot is free again when <see cref="OnConnectionAsync"/> ends.</summary>
    public void TookSlot(ConnectionContext connection) => connection.Items[SlotKey] = null;

    /// <summary>The accept after <see cref="WaitToAcceptAsync"/> failed: its slot is free again.</summary>
    public void ReturnSlot() => _sockets.Release();

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        try
        {
            if (Interlocked.Increment(ref _open) > _limit)
            {
                Interlocked.Decrement(ref _open);
                await RefuseAsync(connection);
                return;
            }

            try
            {
                if (Volatile.Read(ref _refusing) != 0 && Interlocked.Exchange(ref _refusing, 0) != 0)
                {
                    LogAcceptingAgain(_listener, Interlocked.Exchange(ref _refusedThisSpell, 0));
                }

                await next(connection);
            }
            finally
            {
                Interlocked.Decrement(ref _open);
            }
        }
        finally
        {
            // Kestrel closes the socket as soon as this returns.
            if (connection.Items.Remove(SlotKey))
            {
                _sockets.Release();
            }
        }
    }

    private static readonly object SlotKey = new();

    private async Task RefuseAsync(ConnectionContext connection)
    {
        Interlocked.Increment(ref _refused);
        Interlocked.Increment(ref _refusedThisSpell);
        if (Interlocked.Exchange(ref _refusing, 1) == 0)
        {
            LogAtLimit(_listener, _limit, Why);
        }

        if (_refuseSilently?.Invoke(connection.RemoteEndPoint) == true)
        {
            return;
        }

        // Written before the request is read: an answer the client finds when it reads. It fits the socket's send
        // buffer, so the write does not wait on the client; the bound is for one whose buffer is full all the same.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        timeout.CancelAfter(RefusalWriteTimeout);
        try
        {
            await connection.Transport.Output.WriteAsync(_refusal, timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or ConnectionResetException or ConnectionAbortedException)
        {
            // Gone already, or not reading: the connection is closed either way.
        }
    }

    private static readonly TimeSpan RefusalWriteTimeout = TimeSpan.FromSeconds(1);

    [LoggerMessage(1, LogLevel.Warning, "The {Listener} listener has {Limit} connections open, its limit ({Why}); further connections are answered 503 and closed until some of these close.")]
    private partial void LogAtLimit(string listener, int limit, string why);

    [LoggerMessage(2, LogLevel.Information, "The {Listener} listener accepts connections again; {Refused} were refused while it was at its limit.")]
    private partial void LogAcceptingAgain(string listener, long refused);
}

/// <summary>The limiters of the two listeners, built from <see cref="ConnectionLimits"/>.</summary>
internal sealed partial class ConnectionLimiters
{
    private readonly ILogger _logger;

    public ConnectionLimiters(ConnectionLimits limits, ClientAddressPolicy clientPolicy, ILoggerFactory loggers)
    {
        Limits = limits;
        _logger = loggers.CreateLogger<ConnectionLimiters>();
        var limiterLogger = loggers.CreateLogger<ConnectionLimiter>();
        var fromFileLimit = $"set from the open-file limit, ulimit -n {limits.OpenFileLimit}";
        Proxy = limits.Proxy is { } proxy
            ? new ConnectionLimiter("proxy", proxy, limits.ProxyFromOption ? "--max-connections" : fromFileLimit + "; --max-connections sets another", limiterLogger, client => clientPolicy.Refusal(client) is not null)
            : null;
        Web = limits.Web is { } web ? new ConnectionLimiter("web", web, fromFileLimit, limiterLogger) : null;
    }

    public ConnectionLimits Limits { get; }

    public ConnectionLimiter? Proxy { get; }

    public ConnectionLimiter? Web { get; }

    /// <summary>Says at start what the limits are, and warns when a given limit is more than the process can open.</summary>
    public void LogLimits()
    {
        if (Proxy is null && Web is null)
        {
            return;
        }

        LogLimits(Proxy?.Limit.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no limit", Web?.Limit.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no limit", Limits.OpenFileLimit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown");
        if (!Limits.FitsOpenFileLimit)
        {
            LogBeyondFileLimit(Limits.Proxy!.Value, Limits.OpenFileLimit!.Value, (2L * Limits.Proxy.Value) + (Limits.Web ?? 0) + ConnectionLimits.Reserved);
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Connections kept open at once: {Proxy} on the proxy listener, {Web} on the web listener (open-file limit {OpenFileLimit}).")]
    private partial void LogLimits(string proxy, string web, string openFileLimit);

    [LoggerMessage(2, LogLevel.Warning, "--max-connections {MaxConnections} needs about {Needed} file descriptors (two per proxied connection, the web listener's share and the process's own), more than the open-file limit of {OpenFileLimit} (ulimit -n). Raise the limit or lower --max-connections: a process out of descriptors cannot accept connections and may fail.")]
    private partial void LogBeyondFileLimit(int maxConnections, long openFileLimit, long needed);
}
