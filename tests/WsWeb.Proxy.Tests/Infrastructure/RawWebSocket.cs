using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>One frame exactly as it crossed the wire (payload already unmasked).</summary>
internal sealed record RawFrame(bool Fin, bool Rsv1, bool Rsv2, bool Rsv3, Opcode Opcode, bool Masked, byte[] Payload)
{
    /// <summary>The masking key as it was on the wire (big-endian), or null for an unmasked frame.</summary>
    public uint? MaskKey { get; init; }

    public string Text => Encoding.UTF8.GetString(Payload);

    /// <summary>The close code of a close frame, or null when its payload is empty.</summary>
    public int? CloseCode => Opcode == Opcode.Close && Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : null;

    public string CloseReason => Payload.Length > 2 ? Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2) : "";

    public override string ToString() => $"{Opcode} fin={Fin} masked={Masked} len={Payload.Length}";
}

/// <summary>
/// A WebSocket endpoint that reads and writes raw RFC 6455 frames on a stream, so tests see and
/// produce exactly what is on the wire: pings and pongs, fragments, masks, reserved bits, bad frames.
/// Frames are built with the engine's <see cref="FrameCodec"/>; reading uses an independent parser.
/// </summary>
internal sealed class RawWebSocket(Stream stream, bool isClient) : IAsyncDisposable
{
    private readonly byte[] _one = new byte[1];

    public Stream Stream { get; } = stream;

    /// <summary>Client endpoints mask their frames by default, servers do not.</summary>
    public bool IsClient { get; } = isClient;

    /// <summary>Builds one frame. <paramref name="mask"/> defaults to the role's rule; <paramref name="extraBits"/> is OR-ed into byte 0 (RSV bits).</summary>
    public static byte[] BuildFrame(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, bool masked = true, byte extraBits = 0)
    {
        int? maskKey = masked ? BitConverter.ToInt32(RandomNumberGenerator.GetBytes(4)) : null;
        var headerLength = FrameCodec.HeaderLength(payload.Length, masked);
        var frame = new byte[headerLength + payload.Length];
        FrameCodec.WriteHeader(frame, fin, rsv1: false, opcode, payload.Length, maskKey);
        frame[0] |= extraBits;
        payload.CopyTo(frame.AsSpan(headerLength));
        if (maskKey is { } key)
        {
            FrameCodec.ApplyMask(frame.AsSpan(headerLength), key, 0);
        }

        return frame;
    }

    public static byte[] ClosePayload(int code, string reason = "")
    {
        var payload = new byte[2 + Encoding.UTF8.GetByteCount(reason)];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)code);
        Encoding.UTF8.GetBytes(reason, payload.AsSpan(2));
        return payload;
    }

    public Task SendAsync(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, bool? masked = null, byte extraBits = 0, CancellationToken cancellationToken = default) =>
        SendRawAsync(BuildFrame(opcode, payload, fin, masked ?? IsClient, extraBits), cancellationToken);

    public Task SendTextAsync(string text, CancellationToken cancellationToken = default) =>
        SendAsync(Opcode.Text, Encoding.UTF8.GetBytes(text), cancellationToken: cancellationToken);

    public Task SendCloseAsync(int code, string reason = "", CancellationToken cancellationToken = default) =>
        SendAsync(Opcode.Close, ClosePayload(code, reason), cancellationToken: cancellationToken);

    public async Task SendRawAsync(byte[] bytes, CancellationToken cancellationToken = default)
    {
        await Stream.WriteAsync(bytes, cancellationToken);
        await Stream.FlushAsync(cancellationToken);
    }

    /// <summary>Reads the next frame; null at a clean end of stream before a frame starts.</summary>
    public async Task<RawFrame?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var head = new byte[2];
        if (!await ReadExactlyOrEofAsync(head, cts.Token))
        {
            return null;
        }

        var masked = (head[1] & 0x80) != 0;
        long length = head[1] & 0x7F;
        if (length == 126)
        {
            var ext = new byte[2];
            await Stream.ReadExactlyAsync(ext, cts.Token);
            length = BinaryPrimitives.ReadUInt16BigEndian(ext);
        }
        else if (length == 127)
        {
            var ext = new byte[8];
            await Stream.ReadExactlyAsync(ext, cts.Token);
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(ext);
        }

        var key = new byte[4];
        if (masked)
        {
            await Stream.ReadExactlyAsync(key, cts.Token);
        }

        var payload = new byte[length];
        await Stream.ReadExactlyAsync(payload, cts.Token);
        if (masked)
        {
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= key[i & 3];
            }
        }

        return new RawFrame(
            Fin: (head[0] & 0x80) != 0,
            Rsv1: (head[0] & 0x40) != 0,
            Rsv2: (head[0] & 0x20) != 0,
            Rsv3: (head[0] & 0x10) != 0,
            Opcode: (Opcode)(head[0] & 0x0F),
            Masked: masked,
            Payload: payload)
        {
            MaskKey = masked ? BinaryPrimitives.ReadUInt32BigEndian(key) : null,
        };
    }

    /// <summary>Reads the next frame and fails if the stream ended instead.</summary>
    public async Task<RawFrame> ReadRequiredFrameAsync(TimeSpan? timeout = null) =>
        await ReadFrameAsync(timeout) ?? throw new EndOfStreamException("The connection ended where a frame was expected.");

    /// <summary>True if the peer closes the TCP connection (reads EOF) within the timeout, skipping no frames: any frame fails.</summary>
    public async Task<bool> EndsWithoutFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            return await Stream.ReadAsync(_one, cts.Token) == 0;
        }
        catch (IOException)
        {
            return true; // reset by peer counts as the connection ending
        }
    }

    private async Task<bool> ReadExactlyOrEofAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await Stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                return read == 0 ? false : throw new EndOfStreamException("The connection ended inside a frame header.");
            }

            read += n;
        }

        return true;
    }

    /// <summary>
    /// Drops the TCP connection with a reset (SO_LINGER 0), as a crashed peer does. Unlike a FIN, a reset does not
    /// queue behind bytes the other side has not taken yet.
    /// </summary>
    public void Reset()
    {
        var socket = (Stream as NetworkStream)?.Socket ?? throw new InvalidOperationException("Only a plain TCP stream can be reset.");
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    /// <summary>Reads frames until the connection ends (EOF or reset); false if it is still open at the timeout.</summary>
    public async Task<bool> EndsAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        try
        {
            while (DateTime.UtcNow < deadline)
            {
                if (await ReadFrameAsync(deadline - DateTime.UtcNow) is null)
                {
                    return true;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            // The deadline passed inside a read.
        }

        return false;
    }

    public async ValueTask DisposeAsync() => await Stream.DisposeAsync();
}
