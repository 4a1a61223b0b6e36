using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>An accepted connection of <see cref="RawWebSocketServer"/>: the request head it got, and raw frame I/O.</summary>
internal sealed class RawServerConnection(TcpClient tcp, string requestHead, RawWebSocket socket) : IAsyncDisposable
{
    public string RequestHead { get; } = requestHead;

    public RawWebSocket Socket { get; } = socket;

    /// <summary>Drops the TCP connection without a close frame (RST-free: a plain FIN).</summary>
    public void DropTcp() => tcp.Client.Shutdown(SocketShutdown.Both);

    /// <summary>Drops the TCP connection with a reset, which does not wait behind unsent bytes as a FIN does.</summary>
    public void ResetTcp()
    {
        tcp.Client.LingerState = new LingerOption(true, 0);
        tcp.Client.Close();
    }

    public async ValueTask DisposeAsync()
    {
        await Socket.DisposeAsync();
        tcp.Dispose();
    }
}

/// <summary>
/// A WebSocket server peer written by hand on a <see cref="TcpListener"/>: it does the RFC 6455
/// opening handshake itself and then hands the test raw frames, so it sees pings (which
/// System.Net.WebSockets answers and hides) and can break the protocol on purpose.
/// </summary>
internal sealed class RawWebSocketServer : IAsyncDisposable
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private readonly TcpListener _listener;
    private readonly List<RawServerConnection> _connections = [];

    private RawWebSocketServer(TcpListener listener) => _listener = listener;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Uri WsUri(string path = "/raw") => new($"ws://127.0.0.1:{Port}{path}");

    /// <param name="receiveBufferSize">SO_RCVBUF for accepted connections (set on the listener, so the first window advertised is already that small).</param>
    public static RawWebSocketServer Start(int? receiveBufferSize = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        if (receiveBufferSize is { } size)
        {
            listener.Server.ReceiveBufferSize = size;
        }

        listener.Start();
        return new RawWebSocketServer(listener);
    }

    public static string AcceptKey(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key.Trim() + Guid)));

    /// <summary>Accepts the next connection and answers its upgrade with 101 (and <paramref name="subProtocol"/> if given).</summary>
    public async Task<RawServerConnection> AcceptAsync(string? subProtocol = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var tcp = await _listener.AcceptTcpClientAsync(cts.Token);
        tcp.NoDelay = true;
        var stream = tcp.GetStream();
        var head = await ProxyClients.ReadHeadAsync(stream);
        var key = HeaderValue(head, "Sec-WebSocket-Key") ?? throw new InvalidOperationException("No Sec-WebSocket-Key in: " + head);
        var response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Accept: {AcceptKey(key)}\r\n"
            + (subProtocol is null ? "" : $"Sec-WebSocket-Protocol: {subProtocol}\r\n")
            + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(response), cts.Token);
        var connection = new RawServerConnection(tcp, head, new RawWebSocket(stream, isClient: false));
        lock (_connections)
        {
            _connections.Add(connection);
        }

        return connection;
    }

    /// <summary>The value of a header in an HTTP head (first occurrence, case-insensitive), or null.</summary>
    public static string? HeaderValue(string head, string name)
    {
        foreach (var line in head.Split("\r\n"))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && string.Equals(line[..colon].Trim(), name, StringComparison.OrdinalIgnoreCase))
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        RawServerConnection[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }
    }
}
