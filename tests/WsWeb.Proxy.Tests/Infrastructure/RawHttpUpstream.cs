using System.Net;
using System.Net.Sockets;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>
/// An HTTP server written by hand on a <see cref="TcpListener"/>: it answers each connection with exactly the
/// bytes a test gives it, so tests can send response heads that Kestrel would never produce, and see the
/// request head byte for byte as the proxy sent it.
/// </summary>
internal sealed class RawHttpUpstream : IDisposable
{
    private readonly TcpListener _listener;

    private RawHttpUpstream(TcpListener listener) => _listener = listener;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Whether a connection waits to be accepted: the proxy connected and nothing answered it yet.</summary>
    public bool HasPendingConnection => _listener.Pending();

    public static RawHttpUpstream Start()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new RawHttpUpstream(listener);
    }

    /// <summary>Accepts the next connection, reads its request head (Latin-1, so one char per byte), answers with <paramref name="response"/> and closes.</summary>
    public async Task<string> AnswerAsync(byte[] response)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await _listener.AcceptTcpClientAsync(cts.Token);
        var stream = tcp.GetStream();
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
        await stream.WriteAsync(response, cts.Token);
        tcp.Client.Shutdown(SocketShutdown.Send);
        return head;
    }

    /// <summary>
    /// Accepts the next connection, reads its request head and answers with <paramref name="response"/> at once, before
    /// any body; then reads (and discards) whatever comes until the proxy closes, or closes itself when <paramref name="closeAfter"/>.
    /// </summary>
    /// <returns>The request head, once the answer is sent.</returns>
    public async Task<string> AnswerEarlyAsync(byte[] response, bool closeAfter = false)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var tcp = await _listener.AcceptTcpClientAsync(cts.Token);
        var stream = tcp.GetStream();
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
        await stream.WriteAsync(response, cts.Token);
        if (closeAfter)
        {
            // A reset, as a close with unread bytes is: the proxy's next write fails rather than vanishing.
            tcp.Client.LingerState = new LingerOption(true, 0);
            tcp.Dispose();
            return head;
        }

        _ = Task.Run(async () =>
        {
            using (tcp)
            {
                var buffer = new byte[8192];
                try
                {
                    using var held = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    while (await stream.ReadAsync(buffer, held.Token) > 0)
                    {
                    }
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException)
                {
                }
            }
        });
        return head;
    }

    /// <summary>Accepts the next connection and never answers; <see cref="Accepted"/> completes with its request head.</summary>
    /// <returns>Completes when the proxy closes the connection.</returns>
    public async Task SilentAsync(TaskCompletionSource<string> accepted, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var tcp = await _listener.AcceptTcpClientAsync(cts.Token);
        var stream = tcp.GetStream();
        accepted.TrySetResult(await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token));
        var buffer = new byte[1024];
        try
        {
            while (await stream.ReadAsync(buffer, cts.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
            // A reset is a close too.
        }
    }

    public void Dispose() => _listener.Dispose();
}
