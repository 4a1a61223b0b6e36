using System.Collections.Concurrent;
using System.Net.WebSockets;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
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

    [Fact]
    public async Task ReusedCaptureArraysNeverCorruptWhatCrossesTheWire()
    {
        // Retention of two messages evicts each message while the next ones are read and earlier ones
        // may still be going out: evicted arrays come back for new messages of the same size.
        var kept = new KeepMessagesUnread();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxMessagesPerFlow = 2 }, services => services.AddWebSocketAddon(kept));
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var random = new Random(7);
        var payloads = Enumerable.Range(0, 40).Select(_ =>
        {
            var payload = new byte[256 * 1024];
            random.NextBytes(payload);
            return payload;
        }).ToArray();

        // Several messages in flight at once, so writes overlap the reads that evict their messages.
        var sending = Task.Run(async () =>
        {
            foreach (var payload in payloads)
            {
                await client.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
            }
        });
        foreach (var payload in payloads)
        {
            var echoed = await ProxyClients.ReceiveMessageAsync(client);
            Assert.Equal(payload, echoed.Data);
        }

        await sending;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 80, "eighty recorded messages");

        // What retention kept still reads back as what was sent (the newest message is the last echo).
        Assert.Equal(payloads[^1], flow.WebSocket!.Messages[^1].Content);

        // Messages evicted before anyone read them gave their arrays back; reading one now says so
        // instead of showing bytes that belong to a later message.
        await Eventually.AssertAsync(() => kept.Messages.Count(m => Throws(() => m.Content)) == 78, "the 78 evicted messages released");
        var error = Assert.Throws<InvalidOperationException>(() => kept.Messages.First(m => Throws(() => m.Content)).Content);
        Assert.Contains("evicted", error.Message, StringComparison.Ordinal);
    }

    private static bool Throws(Func<byte[]> read)
    {
        try
        {
            read();
            return false;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    /// <summary>Holds on to every message without reading it, as an addon keeping history might.</summary>
    private sealed class KeepMessagesUnread : IWebSocketAddon
    {
        public ConcurrentQueue<WebSocketMessage> Messages { get; } = new();

        public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
        {
            Messages.Enqueue(message);
            return ValueTask.CompletedTask;
        }
    }
}
