using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;

namespace WsWeb.Tests.Infrastructure;

/// <summary>A real <see cref="ClientWebSocket"/> through the proxy with a background reader, so tests can wait for messages or show their absence.</summary>
internal sealed class ClientPeer : IAsyncDisposable
{
    private readonly Channel<(WebSocketMessageType Type, byte[] Data)> _received = Channel.CreateUnbounded<(WebSocketMessageType, byte[])>();
    private readonly Task _reader;

    private ClientPeer(ClientWebSocket socket, string tag)
    {
        Socket = socket;
        Tag = tag;
        _reader = Task.Run(ReadAsync);
    }

    public ClientWebSocket Socket { get; }

    public string Tag { get; }

    public TaskCompletionSource<(WebSocketCloseStatus? Status, string? Reason)> CloseReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<ClientPeer> ConnectAsync(Uri proxy, Uri target, string tag)
    {
        var socket = new ClientWebSocket();
        socket.Options.Proxy = new WebProxy(proxy);
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(target, timeout.Token);
        return new ClientPeer(socket, tag);
    }

    /// <summary>Starts the closing handshake and waits for the reply; the background reader owns receiving.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string? reason)
    {
        await Socket.CloseOutputAsync(status, reason, CancellationToken.None);
        await CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public Task SendTextAsync(string text) => Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendBinaryAsync(byte[] data) => Socket.SendAsync(data, WebSocketMessageType.Binary, true, CancellationToken.None);

    public async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        return await _received.Reader.ReadAsync(cts.Token);
    }

    public async Task<string> ReceiveTextAsync(TimeSpan? timeout = null)
    {
        var (type, data) = await ReceiveAsync(timeout);
        Assert.Equal(WebSocketMessageType.Text, type);
        return Encoding.UTF8.GetString(data);
    }

    /// <summary>True if nothing arrives within <paramref name="wait"/>.</summary>
    public async Task<bool> NothingArrivesAsync(TimeSpan wait)
    {
        try
        {
            var message = await ReceiveAsync(wait);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[1024 * 1024];
        try
        {
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await Socket.ReceiveAsync(buffer, CancellationToken.None);
                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseReceived.TrySetResult((result.CloseStatus, result.CloseStatusDescription));
                    return;
                }

                await _received.Writer.WriteAsync((result.MessageType, message.ToArray()));
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            CloseReceived.TrySetResult((null, "connection lost"));
        }
        finally
        {
            _received.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Socket.Abort();
        await _reader;
        Socket.Dispose();
    }
}
