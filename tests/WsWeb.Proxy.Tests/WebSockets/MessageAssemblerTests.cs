using System.Buffers;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>The sans-IO reassembly, byte by byte: what it keeps of a message's frame boundaries.</summary>
public sealed class MessageAssemblerTests
{
    [Fact]
    public void EmptyContinuationsPastTheCapAreMergedSoTheRecordedBoundariesStayBounded()
    {
        const int emptyFragments = 200_000;
        var first = RawWebSocket.BuildFrame(Opcode.Binary, "a"u8, fin: false, masked: false);
        var last = RawWebSocket.BuildFrame(Opcode.Continuation, "b"u8, fin: true, masked: false);
        var wire = new byte[first.Length + 2 * emptyFragments + last.Length];
        first.CopyTo(wire, 0);
        last.CopyTo(wire, wire.Length - last.Length);
        using var assembler = new MessageAssembler(fromClient: false, maxMessageSize: 1024);

        var buffer = new ReadOnlySequence<byte>(wire);
        Assert.Equal(AssemblerStep.Message, assembler.Read(ref buffer));

        Assert.True(buffer.IsEmpty);
        Assert.Equal(MessageAssembler.MaxFragments, assembler.Fragments.Count);
        Assert.Equal(1, assembler.Fragments[0].Length);
        Assert.All(assembler.Fragments.Skip(1).SkipLast(1), f => Assert.Equal(0, f.Length));
        Assert.Equal(1, assembler.Fragments[^1].Length);
        Assert.Equal("ab"u8.ToArray(), assembler.TakeContent());
    }

    [Fact]
    public void AMessageOfExactlyTheCapKeepsEveryBoundary()
    {
        // Masked, as from a client, so each frame's payload is unmasked at its own offset.
        var wire = Enumerable.Range(0, MessageAssembler.MaxFragments)
            .SelectMany(i => RawWebSocket.BuildFrame(i == 0 ? Opcode.Binary : Opcode.Continuation, [(byte)i], fin: i == MessageAssembler.MaxFragments - 1))
            .ToArray();
        using var assembler = new MessageAssembler(fromClient: true, maxMessageSize: 1024 * 1024);

        var buffer = new ReadOnlySequence<byte>(wire);
        Assert.Equal(AssemblerStep.Message, assembler.Read(ref buffer));

        Assert.Equal(MessageAssembler.MaxFragments, assembler.Fragments.Count);
        Assert.All(assembler.Fragments, f => Assert.Equal(1, f.Length));
        Assert.Equal(Enumerable.Range(0, MessageAssembler.MaxFragments).Select(i => (byte)i), assembler.TakeContent());
    }

    [Theory]
    [InlineData(Opcode.Ping, "ping")]
    [InlineData(Opcode.Pong, "pong")]
    [InlineData(Opcode.Close, "close")]
    public void Rsv1OnAControlFrameWithDeflateNegotiatedNamesTheControlFrame(Opcode opcode, string name)
    {
        using var assembler = new MessageAssembler(fromClient: false, maxMessageSize: 1024) { AllowCompression = true };
        var buffer = new ReadOnlySequence<byte>(RawWebSocket.BuildFrame(opcode, [], masked: false, extraBits: 0x40));

        var error = ReadFails(assembler, buffer);

        Assert.Equal(WebSocketCloseCodes.ProtocolError, error.CloseCode);
        Assert.Equal($"RSV1 is set on a {name} frame: permessage-deflate sets it on a message's first frame only (RFC 7692 §6).", error.Message);
    }

    [Fact]
    public void Rsv1OnAContinuationWithDeflateNegotiatedNamesTheContinuation()
    {
        using var assembler = new MessageAssembler(fromClient: false, maxMessageSize: 1024) { AllowCompression = true };
        var first = new ReadOnlySequence<byte>(RawWebSocket.BuildFrame(Opcode.Binary, "x"u8, fin: false, masked: false, extraBits: 0x40));
        Assert.Equal(AssemblerStep.NeedMoreData, assembler.Read(ref first));

        var error = ReadFails(assembler, new ReadOnlySequence<byte>(RawWebSocket.BuildFrame(Opcode.Continuation, "y"u8, masked: false, extraBits: 0x40)));

        Assert.Equal(WebSocketCloseCodes.ProtocolError, error.CloseCode);
        Assert.Equal("RSV1 is set on a continuation frame: permessage-deflate sets it on a message's first frame only (RFC 7692 §6).", error.Message);
    }

    [Theory]
    [InlineData(Opcode.Text)]
    [InlineData(Opcode.Ping)]
    public void Rsv1WithoutDeflateStillSaysNoExtensionWasNegotiated(Opcode opcode)
    {
        using var assembler = new MessageAssembler(fromClient: false, maxMessageSize: 1024);

        var error = ReadFails(assembler, new ReadOnlySequence<byte>(RawWebSocket.BuildFrame(opcode, "x"u8, masked: false, extraBits: 0x40)));

        Assert.Equal("Reserved bit RSV1 is set without a negotiated extension for it.", error.Message);
    }

    private static WebSocketProtocolException ReadFails(MessageAssembler assembler, ReadOnlySequence<byte> buffer) =>
        Assert.Throws<WebSocketProtocolException>(() => assembler.Read(ref buffer));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_large_frame_holds_memory_for_the_bytes_that_arrived_not_for_what_its_header_declared(bool fin)
    {
        // 64 MiB declared, 1 KiB sent: a stalled peer costs what it sent, not the declared size (per connection).
        const int declared = 64 * 1024 * 1024;
        var frame = RawWebSocket.BuildFrame(fin ? Opcode.Binary : Opcode.Text, new byte[declared], fin, masked: false);
        using var assembler = new MessageAssembler(fromClient: false, maxMessageSize: 2L * declared);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var start = new ReadOnlySequence<byte>(frame.AsMemory(0, 10 + 1024));
        Assert.Equal(AssemblerStep.NeedMoreData, assembler.Read(ref start));
        var held = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(held < 256 * 1024, $"{held} bytes were allocated for 1 KiB of payload");

        // The rest arrives in pieces, and the message is whole and exact.
        for (var at = 10 + 1024; at < frame.Length; at += 1 << 20)
        {
            var piece = new ReadOnlySequence<byte>(frame.AsMemory(at, Math.Min(1 << 20, frame.Length - at)));
            var step = assembler.Read(ref piece);
            Assert.Equal(at + (1 << 20) >= frame.Length && fin ? AssemblerStep.Message : AssemblerStep.NeedMoreData, step);
        }

        if (fin)
        {
            Assert.Equal(declared, assembler.TakeContent().Length);
        }
    }
}
