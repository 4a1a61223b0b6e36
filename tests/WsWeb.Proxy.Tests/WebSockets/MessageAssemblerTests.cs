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
}
