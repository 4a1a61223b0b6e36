using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace WsWeb.Tests.Infrastructure;

/// <summary>What one server-side connection of <see cref="EchoPeer"/> received.</summary>
internal sealed class PeerConnection
{
    public ConcurrentQueue<(WebSocketMessageType Type, byte[] Data)> Received { get; } = new();

    public TaskCompletionSource<(WebSocketCloseStatus? Status, string? Reason)> CloseReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IEnumerable<string> Texts => Received.Where(m => m.Type == WebSocketMessageType.Text).Select(m => System.Text.Encoding.UTF8.GetString(m.Data));
}

/// <summary>
/// A real WebSocket server (Kestrel + System.Net.WebSockets) that echoes each message back and records
/// what it got per connection, keyed by the <c>c</c> query parameter the test chose.
/// </summary>
internal sealed class EchoPeer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoPeer(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public ConcurrentDictionary<string, PeerConnection> Connections { get; } = new();

    /// <param name="address">A loopback address; 127.0.0.1 unless a test needs a host the dashboard does not answer to.</param>
    public static async Task<EchoPeer> StartAsync(IPAddress? address = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(address ?? IPAddress.Loopback, 0));
        var app = builder.Build();
        EchoPeer? peer = null;
        app.UseWebSockets();
        app.Map("/echo", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }

            var tag = context.Request.Query["c"].ToString();
            var connection = peer!.Connections.GetOrAdd(tag, _ => new PeerConnection());
            using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = TimeSpan.Zero });
            await EchoAsync(socket, connection);
        });
        await app.StartAsync();
        peer = new EchoPeer(app);
        peer.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        return peer;
    }

    private static async Task EchoAsync(WebSocket socket, PeerConnection connection)
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
                    result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    connection.CloseReceived.TrySetResult((result.CloseStatus, result.CloseStatusDescription));
                    if (socket.State == WebSocketState.CloseReceived)
                    {
                        await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.Empty, result.CloseStatusDescription, CancellationToken.None);
                    }

                    return;
                }

                var data = message.ToArray();
                connection.Received.Enqueue((result.MessageType, data));
                await socket.SendAsync(data, result.MessageType, true, CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            connection.CloseReceived.TrySetResult((null, "connection lost"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
