using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Sans-IO RFC 6455 frame encoding: bytes in, headers out, and headers plus payloads written into
/// caller-provided spans. No I/O, no allocation.
/// </summary>
internal static class FrameCodec
{
    public const int MaxHeaderLength = 14;
    public const int MaxControlPayload = 125;

    /// <summary>Parses the frame header at the start of <paramref name="buffer"/>.</summary>
    /// <returns>False when more bytes are needed.</returns>
    /// <exception cref="WebSocketProtocolException">The header can never be valid (1002).</exception>
    public static bool TryReadHeader(in ReadOnlySequence<byte> buffer, out FrameHeader header)
    {
        if (buffer.FirstSpan.Length >= MaxHeaderLength || buffer.IsSingleSegment)
        {
            return TryReadHeader(buffer.FirstSpan, out header);
        }

        Span<byte> scratch = stackalloc byte[MaxHeaderLength];
        var length = (int)Math.Min(buffer.Length, MaxHeaderLength);
        buffer.Slice(0, length).CopyTo(scratch);
        return TryReadHeader(scratch[..length], out header);
    }

    public static bool TryReadHeader(ReadOnlySpan<byte> data, out FrameHeader header)
    {
        header = default;
        if (data.Length < 2)
        {
            return false;
        }

        var b0 = data[0];
        var b1 = data[1];
        var masked = (b1 & 0x80) != 0;
        var length7 = b1 & 0x7F;
        var headerLength = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (data.Length < headerLength)
        {
            return false;
        }

        long payloadLength = length7;
        var offset = 2;
        if (length7 == 126)
        {
            payloadLength = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
            offset = 4;
            if (payloadLength < 126)
            {
                // RFC 6455 §5.2: "the minimal number of bytes MUST be used"; wsproto (mitmproxy) refuses it too.
                throw new WebSocketProtocolException(WebSocketCloseCodes.ProtocolError, $"Frame length {payloadLength} used 2 bytes where 1 suffices.");
            }
        }
        else if (length7 == 127)
        {
            var value = BinaryPrimitives.ReadUInt64BigEndian(data[2..]);
            if (value > long.MaxValue)
            {
                throw new WebSocketProtocolException(WebSocketCloseCodes.ProtocolError, "Frame length has its most significant bit set.");
            }

            if (value <= ushort.MaxValue)
            {
                throw new WebSocketProtocolException(WebSocketCloseCodes.ProtocolError, $"Frame length {value} used 8 bytes where {(value < 126 ? 1 : 2)} suffice.");
            }

            payloadLength = (long)value;
            offset = 10;
        }

        var maskKey = masked ? MemoryMarshal.Read<int>(data[offset..]) : 0;
        header = new FrameHeader(
            Fin: (b0 & 0x80) != 0,
            Rsv1: (b0 & 0x40) != 0,
            Rsv2: (b0 & 0x20) != 0,
            Rsv3: (b0 & 0x10) != 0,
            Opcode: (Opcode)(b0 & 0x0F),
            Masked: masked,
            MaskKey: maskKey,
            PayloadLength: payloadLength,
            HeaderLength: headerLength);
        return true;
    }

    /// <summary>Header length needed for a payload of this size.</summary>
    public static int HeaderLength(long payloadLength, bool masked) =>
        2 + (payloadLength <= 125 ? 0 : payloadLength <= ushort.MaxValue ? 2 : 8) + (masked ? 4 : 0);

    /// <summary>Writes a frame header; <paramref name="maskKey"/> null means unmasked (server to client).</summary>
    public static int WriteHeader(Span<byte> destination, bool fin, bool rsv1, Opcode opcode, long payloadLength, int? maskKey)
    {
        destination[0] = (byte)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (byte)opcode);
        var maskBit = maskKey.HasValue ? 0x80 : 0;
        int offset;
        if (payloadLength <= 125)
        {
            destination[1] = (byte)(maskBit | (int)payloadLength);
            offset = 2;
        }
        else if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = (byte)(maskBit | 126);
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            offset = 4;
        }
        else
        {
            destination[1] = (byte)(maskBit | 127);
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
            offset = 10;
        }

        if (maskKey is { } key)
        {
            MemoryMarshal.Write(destination[offset..], in key);
            offset += 4;
        }

        return offset;
    }

    /// <summary>
    /// XORs <paramref name="data"/> with the mask key, where <paramref name="offset"/> is the position
    /// of data[0] within the frame payload (payloads are unmasked in pieces as they arrive).
    /// </summary>
    public static void ApplyMask(Span<byte> data, int maskKey, long offset)
    {
        if (data.IsEmpty)
        {
            return;
        }

        // Rotate the key so that byte 0 of data lines up with key byte (offset % 4); the key is in wire order.
        var shift = (int)(offset & 3) * 8;
        var key = BitConverter.IsLittleEndian
            ? (uint)maskKey >> shift | (uint)maskKey << (32 - shift)
            : (uint)maskKey << shift | (uint)maskKey >> (32 - shift);
        if (shift == 0)
        {
            key = (uint)maskKey;
        }

        var i = 0;
        if (Vector.IsHardwareAccelerated && data.Length >= Vector<byte>.Count)
        {
            var keyVector = Vector.AsVectorByte(new Vector<uint>(key));
            var vectors = MemoryMarshal.Cast<byte, Vector<byte>>(data);
            for (var v = 0; v < vectors.Length; v++)
            {
                vectors[v] ^= keyVector;
            }

            i = vectors.Length * Vector<byte>.Count;
        }

        var words = MemoryMarshal.Cast<byte, uint>(data[i..]);
        for (var w = 0; w < words.Length; w++)
        {
            words[w] ^= key;
        }

        i += words.Length * 4;
        Span<byte> keyBytes = stackalloc byte[4];
        MemoryMarshal.Write(keyBytes, in key);
        for (var k = 0; i < data.Length; i++, k++)
        {
            data[i] ^= keyBytes[k];
        }
    }

    /// <summary>Parses a close frame payload (§5.5.1): empty, or a 2-byte code plus a UTF-8 reason.</summary>
    /// <exception cref="WebSocketProtocolException">1-byte payload or a code not allowed on the wire (1002), or bad UTF-8 (1007).</exception>
    public static (int Code, string? Reason) ReadClosePayload(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return (WebSocketCloseCodes.NoStatusReceived, null);
        }

        if (payload.Length == 1)
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.ProtocolError, "Close frame with a 1-byte payload.");
        }

        int code = BinaryPrimitives.ReadUInt16BigEndian(payload);
        if (!WebSocketCloseCodes.IsValidOnWire(code))
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.ProtocolError, $"Close code {code} is not allowed on the wire.");
        }

        var reasonBytes = payload[2..];
        if (!System.Text.Unicode.Utf8.IsValid(reasonBytes))
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.InvalidPayload, "Close reason is not valid UTF-8.");
        }

        return (code, Encoding.UTF8.GetString(reasonBytes));
    }

    /// <summary>Builds a close payload into <paramref name="destination"/> (at least 125 bytes).</summary>
    public static int WriteClosePayload(Span<byte> destination, int code, string? reason)
    {
        if (code == WebSocketCloseCodes.NoStatusReceived)
        {
            return 0;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)code);
        if (string.IsNullOrEmpty(reason))
        {
            return 2;
        }

        // Trim to 123 bytes without splitting a character; callers validate user input before this.
        var max = MaxControlPayload - 2;
        var written = 0;
        foreach (var rune in reason.EnumerateRunes())
        {
            if (written + rune.Utf8SequenceLength > max)
            {
                break;
            }

            written += rune.EncodeToUtf8(destination[(2 + written)..]);
        }

        return 2 + written;
    }
}
