using System.Net.Sockets;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Tells when the peer of a socket has left (FIN or reset) without reading from it. The proxy's transport reads
/// only when asked, so a peer that leaves while its side waits (for a server's answer, for the other peer to take
/// what it is sent, for a hook holding one of its messages) would otherwise go unnoticed, and whatever it sent before leaving must stay for the next read.
/// </summary>
internal static class PeerWatch
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    // Linux TCP states (include/net/tcp_states.h) in which the peer has closed or reset its side.
    private const byte TcpClose = 7;
    private const byte TcpCloseWait = 8;
    private const byte TcpLastAck = 9;
    private const byte TcpClosing = 11;

    /// <returns>True when the peer closed or reset its connection; false when the watch was cancelled.</returns>
    public static async Task<bool> LeftAsync(Socket socket, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            while (!Closed(socket))
            {
                await Task.Delay(Interval, time, cancellationToken);
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// True once the peer sent its FIN or a reset. On Linux the socket's TCP state says so even with unread bytes
    /// queued before the FIN (a close frame, TLS close_notify, a pipelined request); elsewhere only a socket with
    /// nothing left to read can tell.
    /// </summary>
    public static bool Closed(Socket socket)
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                // getsockopt(IPPROTO_TCP, TCP_INFO): the first byte of struct tcp_info is the TCP state.
                Span<byte> info = stackalloc byte[8];
                socket.GetRawSocketOption(6, 11, info);
                return info[0] is TcpClose or TcpCloseWait or TcpLastAck or TcpClosing;
            }

            return socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return ex is SocketException;
        }
    }
}
