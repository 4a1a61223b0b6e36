using System.Security.Cryptography;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>What the server's side of the wire looks like: who picks the mask keys, and when frames leave the proxy.</summary>
public sealed class UpstreamFramingTests
{
    /// <summary>A client frame masked with a key the client chose.</summary>
    private static byte[] FrameWithKey(Opcode opcode, ReadOnlySpan<byte> payload, int key, bool fin = true)
    {
        var headerLength = FrameCodec.HeaderLength(payload.Length, masked: true);
        var frame = new byte[headerLength + payload.Length];
        FrameCodec.WriteHeader(frame, fin, rsv1: false, opcode, payload.Length, key);
        payload.CopyTo(frame.AsSpan(headerLength));
        FrameCodec.ApplyMask(frame.AsSpan(headerLength), key, 0);
        return frame;
    }

    [Fact]
    public async Task Every_frame_to_the_server_gets_a_fresh_mask_key_not_the_clients()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;

        // A client that masks with all zeros would otherwise decide the exact bytes on the proxy's upstream wire.
        await client.SendRawAsync([
            .. FrameWithKey(Opcode.Text, "plain"u8, 0),
            .. FrameWithKey(Opcode.Binary, "frag-1"u8, 0x01020304, fin: false),
            .. FrameWithKey(Opcode.Continuation, "frag-2"u8, 0x01020304),
            .. FrameWithKey(Opcode.Ping, "ping"u8, 0),
            .. FrameWithKey(Opcode.Binary, RandomNumberGenerator.GetBytes(200_000), 0),
        ]);

        var frames = new List<RawFrame>();
        for (var i = 0; i < 5; i++)
        {
            frames.Add(await upstream.Socket.ReadRequiredFrameAsync());
        }

        Assert.Equal(["plain", "frag-1", "frag-2", "ping"], frames.Take(4).Select(f => f.Text));
        Assert.Equal(200_000, frames[4].Payload.Length);
        Assert.All(frames, f => Assert.True(f.Masked));
        var keys = frames.Select(f => f.MaskKey!.Value).ToList();
        Assert.DoesNotContain(0u, keys);
        Assert.DoesNotContain(0x04030201u, keys);   // the client's key as it sits on the wire
        Assert.Equal(keys.Count, keys.Distinct().Count());
    }

    [Fact]
    public async Task Frames_ahead_of_a_slowly_arriving_large_frame_are_not_held_back()
    {
        await using var server = RawWebSocketServer.Start();
        await using var proxy = await ProxyServer.StartAsync();
        var connecting = ProxyClients.ConnectRawAsync(proxy, server.WsUri());
        await using var upstream = await server.AcceptAsync();
        await using var client = await connecting;
        var large = RawWebSocket.BuildFrame(Opcode.Binary, RandomNumberGenerator.GetBytes(2_000_000));

        // A message and a keep-alive ping, then the start of a 2 MB upload that is still on its way.
        await client.SendRawAsync([.. RawWebSocket.BuildFrame(Opcode.Text, "small message first"u8), .. RawWebSocket.BuildFrame(Opcode.Ping, "keepalive"u8), .. large.AsSpan(0, 200_000)]);

        var text = await upstream.Socket.ReadRequiredFrameAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("small message first", text.Text);
        var ping = await upstream.Socket.ReadRequiredFrameAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((Opcode.Ping, "keepalive"), (ping.Opcode, ping.Text));

        await client.SendRawAsync(large[200_000..]);
        var binary = await upstream.Socket.ReadRequiredFrameAsync();
        Assert.Equal(2_000_000, binary.Payload.Length);
    }
}
