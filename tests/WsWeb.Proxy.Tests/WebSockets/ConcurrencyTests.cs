using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class ConcurrencyTests
{
    private const int Connections = 200;
    private const int MessagesEach = 50;

    [Fact]
    public async Task TwoHundredConcurrentConnectionsEachGetTheirEchoesInOrderAndAreRecorded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        var watch = Stopwatch.StartNew();

        var results = await Task.WhenAll(Enumerable.Range(0, Connections).Select(c => RunConnectionAsync(proxy, echo, c, cts.Token)));

        for (var c = 0; c < Connections; c++)
        {
            Assert.Equal(Expected(c), results[c]);
        }

        var flows = proxy.Store.Query(f => f.IsWebSocket);
        Assert.Equal(Connections, flows.Count);
        foreach (var flow in flows)
        {
            await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
            var c = int.Parse(flow.Request.Path["/echo?c=".Length..], CultureInfo.InvariantCulture);
            var messages = flow.WebSocket!.Messages;
            Assert.Equal(2 * MessagesEach, messages.Count);
            Assert.Equal(Expected(c), messages.Where(m => m.FromClient).Select(m => m.Text));
            Assert.Equal(Expected(c), messages.Where(m => !m.FromClient).Select(m => m.Text));
            Assert.Equal(1000, flow.WebSocket.CloseCode);
        }

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45), $"took {watch.Elapsed}");
    }

    private static List<string> Expected(int connection) =>
        [.. Enumerable.Range(0, MessagesEach).Select(i => $"{connection}:{i}")];

    private static async Task<List<string>> RunConnectionAsync(ProxyServer proxy, EchoServer echo, int c, CancellationToken cancellationToken)
    {
        await Task.Yield();
        using var socket = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri($"/echo?c={c}"));
        var receiving = Task.Run(
            async () =>
            {
                var received = new List<string>(MessagesEach);
                var buffer = new byte[256];
                while (received.Count < MessagesEach)
                {
                    var result = await socket.ReceiveAsync(buffer, cancellationToken);
                    Assert.True(result.EndOfMessage);
                    Assert.Equal(WebSocketMessageType.Text, result.MessageType);
                    received.Add(Encoding.UTF8.GetString(buffer, 0, result.Count));
                }

                return received;
            },
            cancellationToken);
        for (var i = 0; i < MessagesEach; i++)
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes($"{c}:{i}"), WebSocketMessageType.Text, true, cancellationToken);
        }

        var echoes = await receiving;
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
        return echoes;
    }
}
