using System.Net.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>Large payloads take the relay's direct path (socket straight into the message array and back).</summary>
public sealed class LargeMessageTests
{
    [Theory]
    [InlineData("ws")]
    [InlineData("wss")]
    public async Task LargeMessagesCrossIntactBothWays(string scheme)
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(scheme == "wss" ? upstreamCa.IssueLeaf("localhost") : null);
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, scheme == "wss" ? echo.WssUri() : echo.WsUri());
        var random = new Random(42);
        var sizes = new[] { 70_000, 1024 * 1024, 100, 3 * 1024 * 1024 + 7 };

        foreach (var size in sizes)
        {
            var payload = new byte[size];
            random.NextBytes(payload);
            await client.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
            var echoed = await ProxyClients.ReceiveMessageAsync(client);
            Assert.Equal(payload, echoed.Data);
        }

        // A fragmented large message is reassembled once and re-sent with its three frames.
        var big = new byte[600_000];
        random.NextBytes(big);
        await client.SendAsync(big.AsMemory(0, 200_000), WebSocketMessageType.Binary, false, CancellationToken.None);
        await client.SendAsync(big.AsMemory(200_000, 200_000), WebSocketMessageType.Binary, false, CancellationToken.None);
        await client.SendAsync(big.AsMemory(400_000), WebSocketMessageType.Binary, true, CancellationToken.None);
        var reassembled = await ProxyClients.ReceiveMessageAsync(client);
        Assert.Equal(big, reassembled.Data);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 10, "ten recorded messages");
        Assert.Equal(sizes.Concat([big.Length]).SelectMany(s => new[] { s, s }), flow.WebSocket!.Messages.Select(m => m.Content.Length));
        Assert.Equal(big, flow.WebSocket.Messages[8].Content);
    }
}
