using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>
/// A peer that breaks RFC 6455 is closed with the RFC code, the error is recorded, and only its
/// own connection ends: a bystander connection on the same proxy keeps working.
/// </summary>
public sealed class MalformedFrameTests
{
    public static TheoryData<string, int> ClientViolations => new()
    {
        { "rsv2", 1002 },
        { "unmasked", 1002 },
        { "invalid-utf8", 1007 },
        { "opcode-3", 1002 },
        { "too-big", 1009 },
        { "too-big-fragmented", 1009 },
        { "invalid-utf8-fragmented", 1007 },
        { "orphan-continuation", 1002 },
        { "fragmented-ping", 1002 },
        { "ping-126-bytes", 1002 },
        { "close-code-1005-on-wire", 1002 },
        { "close-one-byte", 1002 },
        { "close-reason-invalid-utf8", 1007 },
        { "length-16-bit-for-3-bytes", 1002 },
        { "length-64-bit-for-3-bytes", 1002 },
        { "length-64-bit-for-300-bytes", 1002 },
    };

    /// <summary>A masked text frame whose length field is wider than RFC 6455 §5.2 allows (mask key 0: the payload is as is).</summary>
    private static byte[] WideLengthFrame(int lengthBytes, int length)
    {
        var header = lengthBytes == 2
            ? new byte[] { 0x81, 0x80 | 126, (byte)(length >> 8), (byte)length }
            : [0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, (byte)(length >> 8), (byte)length];
        return [.. header, 0, 0, 0, 0, .. Enumerable.Repeat((byte)'a', length)];
    }

    private static byte[] BadFrame(string violation) => violation switch
    {
        "rsv2" => RawWebSocket.BuildFrame(Opcode.Text, "x"u8, extraBits: 0x20),
        "unmasked" => RawWebSocket.BuildFrame(Opcode.Text, "hi"u8, masked: false),
        "invalid-utf8" => RawWebSocket.BuildFrame(Opcode.Text, [0x41, 0xC3, 0x28]),
        "opcode-3" => RawWebSocket.BuildFrame((Opcode)0x3, "x"u8),
        "too-big" => RawWebSocket.BuildFrame(Opcode.Binary, new byte[2000]),
        "too-big-fragmented" => [.. RawWebSocket.BuildFrame(Opcode.Binary, new byte[600], fin: false), .. RawWebSocket.BuildFrame(Opcode.Continuation, new byte[600])],
        "invalid-utf8-fragmented" => [.. RawWebSocket.BuildFrame(Opcode.Text, "ok "u8, fin: false), .. RawWebSocket.BuildFrame(Opcode.Continuation, [0xED, 0xA0, 0x80])],
        "orphan-continuation" => RawWebSocket.BuildFrame(Opcode.Continuation, "x"u8),
        "fragmented-ping" => RawWebSocket.BuildFrame(Opcode.Ping, "x"u8, fin: false),
        "ping-126-bytes" => RawWebSocket.BuildFrame(Opcode.Ping, new byte[126]),
        "close-code-1005-on-wire" => RawWebSocket.BuildFrame(Opcode.Close, RawWebSocket.ClosePayload(1005)),
        "close-one-byte" => RawWebSocket.BuildFrame(Opcode.Close, [0x03]),
        "close-reason-invalid-utf8" => RawWebSocket.BuildFrame(Opcode.Close, [0x03, 0xE8, 0xFF, 0xFE]),
        "length-16-bit-for-3-bytes" => WideLengthFrame(2, 3),
        "length-64-bit-for-3-bytes" => WideLengthFrame(8, 3),
        "length-64-bit-for-300-bytes" => WideLengthFrame(8, 300),
        _ => throw new ArgumentOutOfRangeException(nameof(violation)),
    };

    [Theory]
    [MemberData(nameof(ClientViolations))]
    public async Task ClientViolationClosesOnlyThatConnectionWithTheRfcCode(string violation, int expectedCode)
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxMessageSize = 1024 });
        using var bystander = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri("/echo?bystander"));
        await using var raw = await ProxyClients.ConnectRawAsync(proxy, echo.WsUri("/echo?offender"));

        await raw.SendTextAsync("fine so far");
        Assert.Equal("fine so far", (await raw.ReadRequiredFrameAsync()).Text);
        await raw.SendRawAsync(BadFrame(violation));

        var close = await raw.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Close, close.Opcode);
        Assert.Equal(expectedCode, close.CloseCode);
        Assert.False(close.Masked);

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo?offender");
        await Eventually.AssertAsync(() => !flow.IsLive, "offending flow ended");
        Assert.Equal(expectedCode, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.NotNull(flow.Error);
        // Too big breaks no rule of the protocol, only the proxy's limit, and both the flow and the server hear which.
        var (error, toServer) = expectedCode == 1009
            ? ("client sent a message too big to relay: Message is larger than the maximum of 1024 bytes.", "the client sent a message too big to relay")
            : ("client violated the WebSocket protocol: ", "the client broke the WebSocket protocol");
        Assert.StartsWith(error, flow.Error, StringComparison.Ordinal);
        // The error code is the offender's alone: the innocent server is told its counterpart went away.
        await Eventually.AssertAsync(
            () => echo.ClosesReceived.Any(c => c.Status == System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable && c.Reason == toServer), "server told 1001 and why");

        await AssertStillEchoesAsync(bystander, "bystander after " + violation);
        var bystanderFlow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/echo?bystander");
        Assert.True(bystanderFlow.IsLive);
        Assert.Null(bystanderFlow.Error);
        using var fresh = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri("/echo?fresh"));
        await AssertStillEchoesAsync(fresh, "a new connection");
    }

    [Fact]
    public async Task MessageExactlyAtTheLimitPassesInBothDirections()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxMessageSize = 1024 });
        await using var raw = await ProxyClients.ConnectRawAsync(proxy, echo.WsUri());
        var payload = new byte[1024];
        payload.AsSpan().Fill(7);

        await raw.SendAsync(Opcode.Binary, payload.AsSpan(0, 512), fin: false);
        await raw.SendAsync(Opcode.Continuation, payload.AsSpan(512), fin: true);

        var first = await raw.ReadRequiredFrameAsync();
        var second = await raw.ReadRequiredFrameAsync();
        Assert.Equal(payload, first.Payload.Concat(second.Payload).ToArray());
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count >= 2, "both directions recorded");
        Assert.All(flow.WebSocket!.Messages, m => Assert.Equal(1024, m.Content.Length));
        Assert.Null(flow.WebSocket.CloseCode);
    }

    [Fact]
    public async Task MaskedServerFrameClosesTheServerWith1002()
    {
        await using var server = RawWebSocketServer.Start();
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var bystander = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;

        await upstream.Socket.SendAsync(Opcode.Text, "masked by mistake"u8, masked: true);

        var toServer = await upstream.Socket.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Close, toServer.Opcode);
        Assert.Equal(1002, toServer.CloseCode);
        Assert.True(toServer.Masked);
        var toClient = await client.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Close, toClient.Opcode);
        Assert.Equal(1001, toClient.CloseCode);

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Port == server.Port);
        await Eventually.AssertAsync(() => flow.WebSocket?.CloseCode is not null, "close recorded");
        Assert.Equal(1002, flow.WebSocket!.CloseCode);
        Assert.False(flow.WebSocket.ClosedByClient);
        Assert.NotNull(flow.Error);
        Assert.Contains("server", flow.Error, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(flow.WebSocket.Messages);

        await AssertStillEchoesAsync(bystander, "bystander");
    }

    [Fact]
    public async Task AServerThatBreaksTheProtocolWhileNotReadingStillLetsTheClientHear1001()
    {
        // The server reads nothing, so the pump relaying the client's flood is stuck writing to it and holds its
        // write lock: the 1002 for the server cannot go out, and must not keep the client from its 1001.
        await using var server = RawWebSocketServer.Start(receiveBufferSize: 4096);
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        var flood = Backpressure.FloodAsync(client, frameSize: 1024);
        await Backpressure.StalledAsync(flow);

        await upstream.Socket.SendAsync(Opcode.Text, "masked by mistake"u8, masked: true);

        // Generous: the point is that a close frame comes before the connection ends, not how fast.
        var close = await client.ReadRequiredFrameAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((Opcode.Close, 1001), (close.Opcode, close.CloseCode));
        Assert.True(await client.EndsAsync(TimeSpan.FromSeconds(60)), "the proxy ended the client connection after its close");
        await flood;
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        Assert.Equal(1002, flow.WebSocket!.CloseCode);
        Assert.False(flow.WebSocket.ClosedByClient);
        Assert.Contains("server", flow.Error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AClientThatBreaksTheProtocolWhileNotReadingIsDroppedWithoutWaitingOutTheCloseTimeout()
    {
        // Waits of 2 s or more never end on this clock: the relay's 5 s close timeouts cannot be what drops the client.
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync(services: s => s.AddSingleton<TimeProvider>(new LongWaitsNeverEndTimeProvider(TimeSpan.FromSeconds(2))));
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        // The server floods and the client reads nothing: the pump relaying to the client is stuck writing to it and
        // holds its write lock, so the 1002 for the client cannot go out.
        var stopFlood = new StrongBox<bool>();
        var flood = FloodAsync(upstream.Socket, stopFlood);
        await Backpressure.StalledAsync(flow);

        await client.SendAsync(Opcode.Text, "x"u8, extraBits: 0x20);

        var toServer = await upstream.Socket.ReadRequiredFrameAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((Opcode.Close, 1001), (toServer.Opcode, toServer.CloseCode));

        // Reading would unstick the proxy's write; sending shows the connection dropped (a reset) without reading.
        Assert.True(await DroppedAsync(client, TimeSpan.FromSeconds(60)), "the proxy dropped the client's TCP connection");

        // The server, told 1001, is let go too (the pump relaying its flood was the one stuck on the client).
        Volatile.Write(ref stopFlood.Value, true);
        await flood;
        Assert.True(await upstream.Socket.EndsAsync(TimeSpan.FromSeconds(60)), "the proxy ended the server connection");
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        Assert.Equal(1002, flow.WebSocket!.CloseCode);
        Assert.True(flow.WebSocket.ClosedByClient);
        Assert.Contains("client", flow.Error, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Sends binary frames from the server until told to stop (between frames: a cancelled socket write would abort it) or the proxy ends the connection.</summary>
    private static Task FloodAsync(RawWebSocket server, StrongBox<bool> stop) => Task.Run(async () =>
    {
        var chunk = new byte[16 * 1024];
        try
        {
            while (!Volatile.Read(ref stop.Value))
            {
                await server.SendAsync(Opcode.Binary, chunk);
            }
        }
        catch (IOException)
        {
            // The proxy ended the connection.
        }
    });

    /// <summary>Writes to the peer without reading until a write fails; false if the writes still go through, or block, at the timeout.</summary>
    private static async Task<bool> DroppedAsync(RawWebSocket peer, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var chunk = new byte[1024];
        try
        {
            while (DateTime.UtcNow < deadline)
            {
                await peer.Stream.WriteAsync(chunk).AsTask().WaitAsync(deadline - DateTime.UtcNow);
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (TimeoutException)
        {
        }

        return false;
    }

    private static async Task AssertStillEchoesAsync(ClientWebSocket socket, string text)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, cts.Token);
        var echoed = await ProxyClients.ReceiveMessageAsync(socket);
        Assert.Equal(text, Encoding.UTF8.GetString(echoed.Data));
    }
}
