using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>One frame as the server's <see cref="WebSocket"/> reported it (ManagedWebSocket never merges frames).</summary>
internal sealed record ReceivedFrame(WebSocketMessageType Type, byte[] Data, bool EndOfMessage);

/// <summary>
/// A real WebSocket server (Kestrel + System.Net.WebSockets) that echoes every message with the same
/// fragmentation. Text commands steer it: "close:CODE:REASON" makes it close, "ping:DATA" is echoed
/// after the server itself sends a ping; "/refuse" answers 403 instead of upgrading.
/// </summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoServer(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public ConcurrentQueue<ReceivedFrame> Frames { get; } = new();

    public ConcurrentQueue<(WebSocketCloseStatus? Status, string? Reason)> ClosesReceived { get; } = new();

    public ConcurrentQueue<string?> NegotiatedSubProtocols { get; } = new();

    public ConcurrentQueue<string?> ExtensionsOffered { get; } = new();

    public Uri WsUri(string path = "/echo") => new($"ws://127.0.0.1:{Port}{path}");

    public Uri WssUri(string host = "localhost", string path = "/echo") => new($"wss://{host}:{Port}{path}");

    public static async Task<EchoServer> StartAsync(X509Certificate2? tlsCertificate = null, bool enableCompression = false)
    {
        var app = LoopbackWebApp.CreateBuilder(tlsCertificate).Build();
        EchoServer? server = null;
        app.UseWebSockets();
        app.Map("/refuse", (HttpContext context) => Results.Text("go away", statusCode: 403));
        app.Map("/echo", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }

            server!.ExtensionsOffered.Enqueue(context.Request.Headers.SecWebSocketExtensions.ToString());
            var requested = context.WebSockets.WebSocketRequestedProtocols;
            var subProtocol = requested.Contains("chat.v2") ? "chat.v2" : requested.FirstOrDefault();
            server.NegotiatedSubProtocols.Enqueue(subProtocol);
            using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                SubProtocol = subProtocol,
                DangerousEnableCompression = enableCompression,
                KeepAliveInterval = TimeSpan.Zero,
            });
            await server.EchoAsync(socket);
        });
        await app.StartAsync();
        server = new EchoServer(app);
        server.Port = LoopbackWebApp.Port(app);
        return server;
    }

    private async Task EchoAsync(WebSocket socket)
    {
        var buffer = new byte[1024 * 1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ClosesReceived.Enqueue((result.CloseStatus, result.CloseStatusDescription));
                    if (socket.State == WebSocketState.CloseReceived)
                    {
                        await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.Empty, result.CloseStatusDescription, CancellationToken.None);
                    }

                    return;
                }

                var data = buffer.AsSpan(0, result.Count).ToArray();
                Frames.Enqueue(new ReceivedFrame(result.MessageType, data, result.EndOfMessage));
                if (result.MessageType == WebSocketMessageType.Text && result.EndOfMessage && data.Length < 200)
                {
                    var text = Encoding.UTF8.GetString(data);
                    if (text.StartsWith("close:", StringComparison.Ordinal))
                    {
                        var parts = text.Split(':', 3);
                        await socket.CloseAsync((WebSocketCloseStatus)int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2], CancellationToken.None);
                        return;
                    }
                }

                await socket.SendAsync(data, result.MessageType, result.EndOfMessage, CancellationToken.None);
            }
        }
        catch (WebSocketException)
        {
            // The peer went away; the tests look at what was recorded.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
