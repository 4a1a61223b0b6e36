using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>Wire fidelity for fragmented and large messages, through the real proxy.</summary>
public sealed class FragmentationTests
{
    [Fact]
    public async Task ThreeFragmentClientMessageKeepsItsFramesUpstreamAndIsRecordedOnce()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await client.SendAsync("Hel"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: false, cts.Token);
        await client.SendAsync("lo, "u8.ToArray(), WebSocketMessageType.Text, endOfMessage: false, cts.Token);
        await client.SendAsync("world"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, cts.Token);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal(WebSocketMessageType.Text, echoed.Type);
        Assert.Equal("Hello, world", Encoding.UTF8.GetString(echoed.Data));
        await Eventually.AssertAsync(() => echo.Frames.Count == 3, "three frames at the server");
        var frames = echo.Frames.ToArray();
        Assert.Equal(["Hel", "lo, ", "world"], frames.Select(f => Encoding.UTF8.GetString(f.Data)));
        Assert.Equal([false, false, true], frames.Select(f => f.EndOfMessage));
        Assert.All(frames, f => Assert.Equal(WebSocketMessageType.Text, f.Type));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both directions recorded");
        var messages = flow.WebSocket!.Messages;
        Assert.Equal(2, messages.Count);
        Assert.True(messages[0].FromClient);
        Assert.Equal(Opcode.Text, messages[0].Type);
        Assert.Equal("Hello, world", messages[0].Text);
        Assert.False(messages[1].FromClient);
        Assert.Equal("Hello, world", messages[1].Text);
    }

    [Fact]
    public async Task ServerFragmentsReachTheClientWithTheirBoundaries()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        await using var raw = await ProxyClients.ConnectRawAsync(proxy, echo.WsUri());

        // The echo server sends back each frame as it received it, so the server->client leg carries
        // three fragments too; the raw client sees exactly what the proxy wrote.
        await raw.SendAsync(Opcode.Text, "Hel"u8, fin: false);
        await raw.SendAsync(Opcode.Continuation, "lo, "u8, fin: false);
        await raw.SendAsync(Opcode.Continuation, "world"u8, fin: true);

        var first = await raw.ReadRequiredFrameAsync();
        var second = await raw.ReadRequiredFrameAsync();
        var third = await raw.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Text, false, "Hel"), (first.Opcode, first.Fin, first.Text));
        Assert.Equal((Opcode.Continuation, false, "lo, "), (second.Opcode, second.Fin, second.Text));
        Assert.Equal((Opcode.Continuation, true, "world"), (third.Opcode, third.Fin, third.Text));
        Assert.All([first, second, third], f => Assert.False(f.Masked));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both directions recorded");
        Assert.Equal(2, flow.WebSocket!.Messages.Count);
        Assert.Equal(["Hello, world", "Hello, world"], flow.WebSocket.Messages.Select(m => m.Text));
        Assert.Equal([true, false], flow.WebSocket.Messages.Select(m => m.FromClient));
    }

    [Fact]
    public async Task TextWithACharacterSplitAcrossFragmentsIsValidAndIntact()
    {
        // "é" is C3 A9 and "€" is E2 82 AC: each fragment alone is invalid UTF-8, the message is valid.
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        await using var raw = await ProxyClients.ConnectRawAsync(proxy, echo.WsUri());

        await raw.SendAsync(Opcode.Text, [(byte)'c', (byte)'a', (byte)'f', 0xC3], fin: false);
        await raw.SendAsync(Opcode.Continuation, [0xA9, (byte)' ', 0xE2, 0x82], fin: false);
        await raw.SendAsync(Opcode.Continuation, [0xAC], fin: true);

        var frames = new[] { await raw.ReadRequiredFrameAsync(), await raw.ReadRequiredFrameAsync(), await raw.ReadRequiredFrameAsync() };
        Assert.Equal([Opcode.Text, Opcode.Continuation, Opcode.Continuation], frames.Select(f => f.Opcode));
        Assert.Equal("café €", Encoding.UTF8.GetString([.. frames.SelectMany(f => f.Payload)]));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both directions recorded");
        Assert.Equal(["café €", "café €"], flow.WebSocket!.Messages.Select(m => m.Text));
        Assert.Null(flow.Error);
    }

    [Fact]
    public async Task PingBetweenFragmentsIsForwardedAndTheMessageStaysWhole()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;

        await client.SendAsync(Opcode.Binary, [1, 2], fin: false);
        await client.SendAsync(Opcode.Ping, "mid"u8);
        await client.SendAsync(Opcode.Continuation, [3, 4], fin: true);

        var received = new List<RawFrame>();
        for (var i = 0; i < 3; i++)
        {
            received.Add(await upstream.Socket.ReadRequiredFrameAsync());
        }

        var ping = Assert.Single(received, f => f.Opcode == Opcode.Ping);
        Assert.Equal("mid", ping.Text);
        var data = received.Where(f => f.Opcode != Opcode.Ping).ToList();
        Assert.Equal([(Opcode.Binary, false), (Opcode.Continuation, true)], data.Select(f => (f.Opcode, f.Fin)));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, data.SelectMany(f => f.Payload));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 1, "message recorded");
        var message = Assert.Single(flow.WebSocket!.Messages);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, message.Content);
        Assert.Equal(1, flow.WebSocket.ClientPings);
    }

    [Fact]
    public async Task AMessageOfCountlessEmptyFragmentsArrivesWholeInABoundedNumberOfFrames()
    {
        // Each fragment boundary costs the proxy memory and an outgoing frame header while the payload stays
        // tiny, so the message-size limit never stops a peer that sends empty continuations without end.
        const int emptyFragments = 200_000;
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;

        var first = RawWebSocket.BuildFrame(Opcode.Binary, "a"u8, fin: false, masked: false);
        var last = RawWebSocket.BuildFrame(Opcode.Continuation, "b"u8, fin: true, masked: false);
        // Between them, 200,000 times 00 00: a continuation frame, not final, no payload (the array starts zeroed).
        var wire = new byte[first.Length + 2 * emptyFragments + last.Length];
        first.CopyTo(wire, 0);
        last.CopyTo(wire, wire.Length - last.Length);
        await upstream.Socket.SendRawAsync(wire);

        var frames = await ReadMessageAsync(client);
        Assert.Equal("ab", Encoding.ASCII.GetString([.. frames.SelectMany(f => f.Payload)]));
        // The boundaries up to the cap are the server's own; what lies past it is merged into the final frame.
        Assert.Equal(MessageAssembler.MaxFragments, frames.Count);
        Assert.Equal((Opcode.Binary, false, "a"), (frames[0].Opcode, frames[0].Fin, frames[0].Text));
        Assert.All(frames.Skip(1).SkipLast(1), f => Assert.Equal((Opcode.Continuation, 0), (f.Opcode, f.Payload.Length)));
        Assert.Equal((Opcode.Continuation, "b"), (frames[^1].Opcode, frames[^1].Text));

        // The connection still works: the next message goes through as it came.
        await upstream.Socket.SendAsync(Opcode.Text, "after"u8);
        var next = await client.ReadRequiredFrameAsync();
        Assert.Equal((Opcode.Text, true, "after"), (next.Opcode, next.Fin, next.Text));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both messages recorded");
        Assert.Equal(["ab", "after"], flow.WebSocket!.Messages.Select(m => Encoding.ASCII.GetString(m.Content)));
        Assert.Null(flow.Error);
    }

    [Fact]
    public async Task AMessageOfManyLargeFragmentsKeepsEveryBoundaryAndByteBothWays()
    {
        // 2 MiB in 4 KiB frames: written out in several flushes, masked afresh toward the server.
        const int fragment = 4096;
        const int count = 512;
        var payload = RandomNumberGenerator.GetBytes(fragment * count);
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;

        var sending = client.SendRawAsync(Fragmented(payload, fragment, masked: true));
        var atServer = await ReadMessageAsync(upstream.Socket);
        await sending;
        var echoing = upstream.Socket.SendRawAsync(Fragmented(payload, fragment, masked: false));
        var atClient = await ReadMessageAsync(client);
        await echoing;

        foreach (var (frames, masked) in new[] { (atServer, true), (atClient, false) })
        {
            Assert.Equal(count, frames.Count);
            Assert.All(frames, f => Assert.Equal((fragment, masked), (f.Payload.Length, f.Masked)));
            Assert.Equal(Opcode.Binary, frames[0].Opcode);
            Assert.All(frames.Skip(1), f => Assert.Equal(Opcode.Continuation, f.Opcode));
            Assert.True(payload.AsSpan().SequenceEqual([.. frames.SelectMany(f => f.Payload)]), "the bytes differ from what was sent");
        }
    }

    private static byte[] Fragmented(byte[] payload, int fragment, bool masked) =>
        [.. payload.Chunk(fragment).SelectMany((chunk, i) =>
            RawWebSocket.BuildFrame(i == 0 ? Opcode.Binary : Opcode.Continuation, chunk, fin: (i + 1) * fragment >= payload.Length, masked))];

    private static async Task<List<RawFrame>> ReadMessageAsync(RawWebSocket peer)
    {
        var frames = new List<RawFrame>();
        do
        {
            frames.Add(await peer.ReadRequiredFrameAsync());
        }
        while (!frames[^1].Fin);

        return frames;
    }

    [Fact]
    public async Task SixteenMebibyteBinaryMessageCrossesBothWaysIntactAndIsRecordedOnce()
    {
        const int size = 16 * 1024 * 1024;
        var payload = RandomNumberGenerator.GetBytes(size);
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var receive = ProxyClients.ReceiveMessageAsync(client, TimeSpan.FromSeconds(30));
        await client.SendAsync(payload, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
        var echoed = await receive;

        Assert.Equal(WebSocketMessageType.Binary, echoed.Type);
        Assert.Equal(size, echoed.Data.Length);
        Assert.True(payload.AsSpan().SequenceEqual(echoed.Data), "the echoed 16 MiB differ from what was sent");
        var atServer = echo.Frames.SelectMany(f => f.Data).ToArray();
        Assert.True(payload.AsSpan().SequenceEqual(atServer), "the server received different bytes");

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both directions recorded");
        var messages = flow.WebSocket!.Messages;
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m =>
        {
            Assert.Equal(Opcode.Binary, m.Type);
            Assert.Equal(size, m.Content.Length);
            Assert.True(payload.AsSpan().SequenceEqual(m.Content));
        });
        Assert.Equal([true, false], messages.Select(m => m.FromClient));
    }
}
