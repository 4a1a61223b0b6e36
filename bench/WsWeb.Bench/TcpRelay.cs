using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace WsWeb.Bench;

/// <summary>
/// The cheapest possible man in the middle: a bare TCP relay in front of the echo server that copies
/// bytes both ways through 1 MiB buffers, with no HTTP, no WebSocket parsing and no capture. What it
/// costs is the floor for any proxy that terminates both TCP legs in user space on this machine:
/// twice the socket reads and writes of a direct connection. The proxy is measured against it.
/// </summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private const int BufferSize = 1024 * 1024;

    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    private TcpRelay(Socket listener, IPEndPoint target)
    {
        _listener = listener;
        _target = target;
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>The echo endpoint reached through the relay (the Host header names the relay; the echo server does not mind).</summary>
    public Uri Uri(Uri echo) => new UriBuilder(echo) { Port = Port }.Uri;

    public static TcpRelay Start(int targetPort)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(64);
        return new TcpRelay(listener, new IPEndPoint(IPAddress.Loopback, targetPort));
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptAsync(_stop.Token);
                _ = RelayAsync(client);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (client)
        {
            client.NoDelay = true;
            try
            {
                await server.ConnectAsync(_target, _stop.Token);
                await Task.WhenAll(PumpAsync(client, server), PumpAsync(server, client));
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                // A side went away; the other is closed with it.
            }
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer.AsMemory(0, BufferSize), SocketFlags.None, _stop.Token)) > 0)
            {
                for (var sent = 0; sent < read;)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, _stop.Token);
                }
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The relay is stopping or a peer reset; nothing to forward.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        _stop.Dispose();
    }
}
