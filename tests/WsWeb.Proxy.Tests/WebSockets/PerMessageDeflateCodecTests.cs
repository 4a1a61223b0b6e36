using System.Buffers;
using System.IO.Compression;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class PerMessageDeflateCodecTests
{
    private const long NoLimit = long.MaxValue;
    private static readonly byte[] FlushTail = [0x00, 0x00, 0xFF, 0xFF];

    // RFC 7692 §7.2.3.1: "Hello" in one compressed block.
    private static readonly byte[] HelloCompressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    [Fact]
    public void Inflate_Rfc7692_Hello()
    {
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, HelloCompressed));
    }

    [Fact]
    public void Inflate_Rfc7692_HelloInTwoFragments()
    {
        // §7.2.3.1: the same payload split over two frames; the inflater gets the frames' payloads in order.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        var payload = Segments([0xf2, 0x48, 0xcd], [0xc9, 0xc9, 0x07, 0x00]);
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(5, inflater.Inflate(payload, output));
        Assert.Equal("Hello"u8.ToArray(), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Inflate_Rfc7692_SharedWindow_SecondHello()
    {
        // §7.2.3.2: with context takeover the second "Hello" is a back-reference into the first.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, HelloCompressed));
        Assert.Equal("Hello", InflateText(inflater, [0xf2, 0x00, 0x11, 0x00, 0x00]));
    }

    [Fact]
    public void Inflate_Rfc7692_StoredBlock()
    {
        // §7.2.3.3: a DEFLATE block with no compression.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]));
    }

    [Fact]
    public void Inflate_Rfc7692_BFinalBlock_ThenNextMessageStartsAFreshStream()
    {
        // §7.2.3.4: a sender may end a message with BFINAL set; the tail we append is then left over.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]));
        Assert.Equal("Hello", InflateText(inflater, [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]));
        Assert.Equal("Hello", InflateText(inflater, HelloCompressed));
        Assert.Equal("Hello", InflateText(inflater, [0xf2, 0x00, 0x11, 0x00, 0x00]));
    }

    [Fact]
    public void Inflate_Rfc7692_TwoBlocksInOneMessage()
    {
        // §7.2.3.5: "He" and "llo" in two blocks, the first ended by a sync flush.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]));
    }

    [Fact]
    public void Inflate_EmptyMessage_AsSingleZeroByte_OrEmptyPayload()
    {
        // §7.2.3.6: 0x00 plus the tail is an empty stored block. An empty payload must not disturb the window either.
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Equal("Hello", InflateText(inflater, HelloCompressed));
        Assert.Equal("", InflateText(inflater, [0x00]));
        Assert.Equal("", InflateText(inflater, []));
        Assert.Equal("Hello", InflateText(inflater, [0xf2, 0x00, 0x11, 0x00, 0x00]));
    }

    [Fact]
    public void Compress_Hello_MatchesTheRfcExample()
    {
        using var deflater = new MessageDeflater();
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(HelloCompressed.Length, deflater.Compress("Hello"u8, output));
        Assert.Equal(HelloCompressed, output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Compress_EmptyMessage_IsASingleZeroByte()
    {
        using var deflater = new MessageDeflater();
        Assert.Equal([0x00], Compress(deflater, []));
        Assert.Equal(HelloCompressed, Compress(deflater, "Hello"u8.ToArray()));
    }

    [Fact]
    public void Compress_NeverEndsWithTheFlushTail()
    {
        using var deflater = new MessageDeflater();
        var random = new Random(7);
        for (var i = 0; i < 50; i++)
        {
            var message = new byte[random.Next(1, 5000)];
            random.NextBytes(message.AsSpan(0, message.Length / 2));
            var compressed = Compress(deflater, message);
            Assert.False(compressed.AsSpan().EndsWith(FlushTail));
        }
    }

    public static TheoryData<string, bool> Corpora => new()
    {
        { "text", false }, { "text", true },
        { "binary", false }, { "binary", true },
        { "empty", false }, { "empty", true },
        { "mixed", false }, { "mixed", true },
    };

    [Theory]
    [MemberData(nameof(Corpora))]
    public void RoundTrip_SeveralMessages(string corpus, bool noContextTakeover)
    {
        var messages = Messages(corpus);
        using var deflater = new MessageDeflater(noContextTakeover);
        using var inflater = new MessageInflater(noContextTakeover, NoLimit);
        foreach (var message in messages)
        {
            var compressed = Compress(deflater, message);
            Assert.Equal(message, Inflate(inflater, compressed));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RoundTrip_16MiB_AcrossManySegments(bool noContextTakeover)
    {
        var message = new byte[16 * 1024 * 1024];
        var random = new Random(42);
        for (var i = 0; i < message.Length; i += 4096)
        {
            // Half noise, half repetition, so the data neither compresses away nor stays the same size.
            random.NextBytes(message.AsSpan(i, 2048));
            message.AsSpan(i, 2048).CopyTo(message.AsSpan(i + 2048, 2048));
        }

        using var deflater = new MessageDeflater(noContextTakeover);
        using var inflater = new MessageInflater(noContextTakeover, message.Length);
        for (var round = 0; round < 2; round++)
        {
            var compressed = Compress(deflater, message);
            Assert.True(compressed.Length < message.Length);

            // As a relay sees it: the payloads of many frames.
            var frames = Enumerable.Range(0, (compressed.Length + 65535) / 65536)
                .Select(i => (ReadOnlyMemory<byte>)compressed.AsMemory(i * 65536, Math.Min(65536, compressed.Length - (i * 65536))))
                .ToArray();
            var output = new ArrayBufferWriter<byte>(message.Length);
            Assert.Equal(message.Length, inflater.Inflate(Segments(frames), output));
            Assert.True(output.WrittenSpan.SequenceEqual(message));
        }
    }

    [Fact]
    public void ContextTakeover_MakesRepeatedMessagesSmaller_NoContextTakeover_DoesNot()
    {
        var message = Encoding.UTF8.GetBytes("{\"type\":\"ticker\",\"symbol\":\"BTC-USD\",\"price\":\"61234.50\",\"volume\":\"1234.5678\"}");
        using var keep = new MessageDeflater(noContextTakeover: false);
        using var reset = new MessageDeflater(noContextTakeover: true);
        var keepFirst = Compress(keep, message);
        var keepSecond = Compress(keep, message);
        var resetFirst = Compress(reset, message);
        var resetSecond = Compress(reset, message);
        Assert.True(keepSecond.Length < keepFirst.Length / 2);
        Assert.Equal(resetFirst, resetSecond);
        Assert.Equal(keepFirst, resetFirst);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Compress_OutputIsValidDeflate_ForAFreshDotNetDeflateStream(bool noContextTakeover)
    {
        // The peer's view: with context takeover all messages form one DEFLATE stream, each followed by
        // the tail the receiver appends; without it every message stands alone.
        var messages = Messages("mixed");
        using var deflater = new MessageDeflater(noContextTakeover);
        var stream = new MemoryStream();
        foreach (var message in messages)
        {
            var compressed = Compress(deflater, message);
            if (noContextTakeover)
            {
                Assert.Equal(message, InflateWithDotNet([.. compressed, .. FlushTail], message.Length));
            }
            else
            {
                stream.Write(compressed);
                stream.Write(FlushTail);
            }
        }

        if (!noContextTakeover)
        {
            var expected = messages.SelectMany(m => m).ToArray();
            Assert.Equal(expected, InflateWithDotNet(stream.ToArray(), expected.Length));
        }
    }

    [Fact]
    public void Inflate_OverTheLimit_ThrowsWithoutInflatingTheWholeBomb()
    {
        using var deflater = new MessageDeflater(level: CompressionLevel.SmallestSize);
        var bomb = Compress(deflater, new byte[64 * 1024 * 1024]);
        Assert.True(bomb.Length < 128 * 1024);

        using var inflater = new MessageInflater(noContextTakeover: false, maxMessageSize: 1024 * 1024);
        var output = new ArrayBufferWriter<byte>();
        var e = Assert.Throws<DecompressedMessageTooLargeException>(() => inflater.Inflate(bomb.AsMemory(), output));
        Assert.Equal(1024 * 1024, e.Limit);
        Assert.Equal(1024 * 1024 + 1, output.WrittenCount);
    }

    [Fact]
    public void Inflate_ExactlyAtTheLimit_Succeeds_OneOver_Throws()
    {
        var message = Encoding.ASCII.GetBytes(new string('x', 1000));
        using var deflater = new MessageDeflater(noContextTakeover: true);
        var compressed = Compress(deflater, message);

        using var exact = new MessageInflater(noContextTakeover: true, maxMessageSize: 1000);
        Assert.Equal(message, Inflate(exact, compressed));
        using var tight = new MessageInflater(noContextTakeover: true, maxMessageSize: 999);
        Assert.Throws<DecompressedMessageTooLargeException>(() => Inflate(tight, compressed));

        using var zero = new MessageInflater(noContextTakeover: true, maxMessageSize: 0);
        Assert.Empty(Inflate(zero, [0x00]));
        Assert.Throws<DecompressedMessageTooLargeException>(() => Inflate(zero, compressed));
    }

    [Fact]
    public void Inflate_AfterTooLarge_TheInflaterStartsClean()
    {
        using var inflater = new MessageInflater(noContextTakeover: false, maxMessageSize: 3);
        Assert.Throws<DecompressedMessageTooLargeException>(() => Inflate(inflater, HelloCompressed));
        using var fresh = new MessageDeflater();
        Assert.Equal("abc", Encoding.ASCII.GetString(Inflate(inflater, Compress(fresh, "abc"u8.ToArray()))));
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff })]
    [InlineData(new byte[] { 0x07 })]
    [InlineData(new byte[] { 0x00, 0x05, 0x00, 0x00, 0x00, 0x48 })]
    public void Inflate_Garbage_ThrowsInvalidData_ThenRecovers(byte[] garbage)
    {
        using var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        Assert.Throws<InvalidDataException>(() => Inflate(inflater, garbage));
        Assert.Equal("Hello", InflateText(inflater, HelloCompressed));
    }

    [Fact]
    public void Disposed_Throws()
    {
        var deflater = new MessageDeflater();
        var inflater = new MessageInflater(noContextTakeover: false, NoLimit);
        deflater.Dispose();
        inflater.Dispose();
        deflater.Dispose();
        Assert.Throws<ObjectDisposedException>(() => deflater.Compress("x"u8, new ArrayBufferWriter<byte>()));
        Assert.Throws<ObjectDisposedException>(() => inflater.Inflate(HelloCompressed.AsMemory(), new ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void Deflater_RejectsWindowsItCannotProduce()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MessageDeflater(maxWindowBits: 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MessageDeflater(maxWindowBits: 16));
        Assert.Throws<NotSupportedException>(() => new MessageDeflater(maxWindowBits: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MessageInflater(false, -1));
    }

    [Theory]
    [InlineData(true, 15)]
    [InlineData(true, 9)]
    [InlineData(false, 15)]
    [InlineData(false, 10)]
    public async Task Interop_InflatesWhatDotNetsWebSocketCompresses(bool contextTakeover, int windowBits)
    {
        // A System.Net.WebSockets client with its own zlib use (and a window we cannot produce) writes
        // masked, compressed frames; we unmask them as the relay would and inflate.
        var wire = new MemoryStream();
        using var client = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions
        {
            IsServer = false,
            DangerousDeflateOptions = new WebSocketDeflateOptions { ClientContextTakeover = contextTakeover, ClientMaxWindowBits = windowBits },
        });
        var messages = Messages("mixed");
        foreach (var message in messages)
        {
            await client.SendAsync(message, message.Length % 2 == 0 ? WebSocketMessageType.Binary : WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }

        // A fragmented one too: the compressed payload is spread over three frames.
        var fragmented = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("fragmented ", 300)));
        await client.SendAsync(fragmented.AsMemory(0, 1000), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        await client.SendAsync(fragmented.AsMemory(1000, 1000), WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
        await client.SendAsync(fragmented.AsMemory(2000), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);

        using var inflater = new MessageInflater(noContextTakeover: !contextTakeover, NoLimit);
        var received = ReadMessages(wire.ToArray())
            .Select(payloads =>
            {
                var output = new ArrayBufferWriter<byte>();
                inflater.Inflate(Segments([.. payloads]), output);
                return output.WrittenSpan.ToArray();
            })
            .ToList();
        Assert.Equal([.. messages, fragmented], received);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Interop_DotNetsWebSocketInflatesWhatWeCompress(bool noContextTakeover)
    {
        // We play the server: unmasked frames with RSV1, the compressed payload split over two frames.
        var messages = Messages("mixed");
        using var deflater = new MessageDeflater(noContextTakeover);
        var wire = new MemoryStream();
        foreach (var message in messages)
        {
            var compressed = Compress(deflater, message);
            var half = compressed.Length / 2;
            WriteFrame(wire, fin: false, rsv1: true, opcode: 0x2, compressed.AsSpan(0, half));
            WriteFrame(wire, fin: true, rsv1: false, opcode: 0x0, compressed.AsSpan(half));
        }

        wire.Position = 0;
        using var client = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions
        {
            IsServer = false,
            DangerousDeflateOptions = new WebSocketDeflateOptions { ServerContextTakeover = !noContextTakeover },
        });
        foreach (var message in messages)
        {
            var received = new MemoryStream();
            var buffer = new byte[8192];
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                received.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);

            Assert.Equal(message, received.ToArray());
        }
    }

    private static List<byte[]> Messages(string corpus)
    {
        var random = new Random(corpus.Length);
        var text = Encoding.UTF8.GetBytes("{\"op\":\"update\",\"text\":\"grüße, κόσμε, 𝄞\",\"seq\":1}");
        var binary = new byte[3000];
        random.NextBytes(binary);
        return corpus switch
        {
            "text" => [text, text, Encoding.UTF8.GetBytes("{\"op\":\"update\",\"seq\":2}"), text],
            "binary" => [binary, binary, [.. binary.Take(10)], binary],
            "empty" => [[], [], "a"u8.ToArray(), [], "a"u8.ToArray()],
            _ => [text, [], binary, text, [], [0x00], FlushTail, [.. FlushTail, .. FlushTail], binary, text],
        };
    }

    private static byte[] Compress(MessageDeflater deflater, byte[] message)
    {
        var output = new ArrayBufferWriter<byte>();
        var count = deflater.Compress(message, output);
        Assert.Equal(count, output.WrittenCount);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Inflate(MessageInflater inflater, byte[] compressed)
    {
        var output = new ArrayBufferWriter<byte>();
        var count = inflater.Inflate(compressed.AsMemory(), output);
        Assert.Equal(count, output.WrittenCount);
        return output.WrittenSpan.ToArray();
    }

    private static string InflateText(MessageInflater inflater, byte[] compressed) => Encoding.UTF8.GetString(Inflate(inflater, compressed));

    private static byte[] InflateWithDotNet(byte[] data, int expectedLength)
    {
        using var inflate = new DeflateStream(new MemoryStream(data), CompressionMode.Decompress);
        var result = new byte[expectedLength];
        inflate.ReadExactly(result);
        return result;
    }

    private static ReadOnlySequence<byte> Segments(params ReadOnlyMemory<byte>[] parts)
    {
        if (parts.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(parts[0], 0);
        var last = first;
        foreach (var part in parts.Skip(1))
        {
            last = last.Append(part);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private static ReadOnlySequence<byte> Segments(params byte[][] parts) =>
        Segments(parts.Select(p => (ReadOnlyMemory<byte>)p).ToArray());

    /// <summary>Splits client frames into messages (lists of unmasked payloads), skipping control frames.</summary>
    private static List<List<ReadOnlyMemory<byte>>> ReadMessages(byte[] wire)
    {
        var messages = new List<List<ReadOnlyMemory<byte>>>();
        List<ReadOnlyMemory<byte>>? current = null;
        var position = 0;
        while (position < wire.Length)
        {
            var fin = (wire[position] & 0x80) != 0;
            var opcode = wire[position] & 0x0F;
            Assert.Equal(opcode is 0x1 or 0x2, (wire[position] & 0x40) != 0);
            long length = wire[position + 1] & 0x7F;
            Assert.True((wire[position + 1] & 0x80) != 0, "client frames are masked");
            position += 2;
            if (length == 126)
            {
                length = (wire[position] << 8) | wire[position + 1];
                position += 2;
            }
            else if (length == 127)
            {
                length = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(wire.AsSpan(position));
                position += 8;
            }

            var mask = wire.AsSpan(position, 4).ToArray();
            position += 4;
            var payload = wire.AsSpan(position, (int)length).ToArray();
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i % 4];
            }

            position += (int)length;
            current ??= [];
            current.Add(payload);
            if (fin)
            {
                messages.Add(current);
                current = null;
            }
        }

        return messages;
    }

    private static void WriteFrame(Stream stream, bool fin, bool rsv1, byte opcode, ReadOnlySpan<byte> payload)
    {
        stream.WriteByte((byte)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode));
        if (payload.Length < 126)
        {
            stream.WriteByte((byte)payload.Length);
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            stream.WriteByte(126);
            stream.WriteByte((byte)(payload.Length >> 8));
            stream.WriteByte((byte)payload.Length);
        }
        else
        {
            stream.WriteByte(127);
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            stream.Write(length);
        }

        stream.Write(payload);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
