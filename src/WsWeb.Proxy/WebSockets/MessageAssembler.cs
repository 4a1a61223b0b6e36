using System.Buffers;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

internal enum AssemblerStep
{
    NeedMoreData,
    Control,
    Message,
}

/// <summary>A frame of a reassembled message, kept so an unmodified message can be re-sent with the same boundaries.</summary>
internal readonly record struct Fragment(long Length);

/// <summary>
/// Sans-IO reassembly of one direction's frames into messages (RFC 6455 §5.4) with the checks of
/// §5.2–5.5: bytes in through <see cref="Read"/>, complete control frames and messages out.
/// Payloads are unmasked while they are copied out of the network buffer, so the buffer can be
/// released frame by frame even for a 64 MiB message.
/// </summary>
internal sealed class MessageAssembler(bool fromClient, long maxMessageSize) : IDisposable
{
    private const int SmallBufferReturnThreshold = 64 * 1024;

    /// <summary>
    /// A single-frame message up to this size gets its exact-size array when its header arrives, and is read straight
    /// into the array the model keeps. Larger ones grow as their bytes come (<see cref="Reserve"/>) and are copied once
    /// at the end: what a peer can make WsWeb hold without sending it is this much per connection, not 64 MiB.
    /// </summary>
    internal const int EagerAllocationLimit = 1024 * 1024;

    /// <summary>
    /// Most frame boundaries kept for one message. Each boundary costs memory here and a frame header on the way
    /// out while its payload may be empty, so the message-size limit alone would let a peer send empty
    /// continuations without end. 65,536 keeps the boundaries of what real peers send (64 MiB in 4 KiB frames is
    /// 16,384; Autobahn's 4 MiB in 64-byte frames is 65,536) at 8 bytes each: at most 512 KiB, beside the 64 MiB
    /// a message may hold by default. Frames past it are merged into the last boundary, which RFC 6455 §5.4 allows
    /// an intermediary that understands the connection's extensions: the message still goes out whole, in at most
    /// this many frames. Counting each frame against the size limit instead would refuse messages within it.
    /// </summary>
    public const int MaxFragments = 65_536;

    /// <summary>A message with more boundaries than this must not keep its list's capacity for the rest of the connection.</summary>
    private const int RetainedFragmentCapacity = 4096;

    private readonly byte[] _control = new byte[FrameCodec.MaxControlPayload];
    private readonly List<Fragment> _fragments = [];
    private Utf8Validator _utf8;
    private FrameHeader _frame;
    private bool _inFrame;
    private long _frameOffset;

    private bool _inMessage;
    private byte[]? _single;
    private byte[]? _pooled;
    private long _length;

    /// <summary>
    /// The limit applies to the message as it inflates (checked while inflating). Deflate makes incompressible
    /// data slightly larger, so the compressed payload of a message within the limit may be a little over it:
    /// allow zlib's worst case (about 1/8 more), still bounding what is buffered before inflating.
    /// </summary>
    private long MaxCompressedLength => maxMessageSize > long.MaxValue / 2 ? long.MaxValue : maxMessageSize + (maxMessageSize >> 3) + (maxMessageSize >> 6) + 64;

    /// <summary>Whether RSV1 may start a message (permessage-deflate was negotiated on this leg).</summary>
    public bool AllowCompression { get; init; }

    public Opcode ControlOpcode { get; private set; }

    public ReadOnlySpan<byte> ControlPayload => _control.AsSpan(0, (int)_frame.PayloadLength);

    public Opcode MessageType { get; private set; }

    /// <summary>The message's first frame had RSV1 set: its payload is compressed.</summary>
    public bool Compressed { get; private set; }

    /// <summary>The frames of the last message (valid until the next <see cref="Read"/>).</summary>
    public IReadOnlyList<Fragment> Fragments => _fragments;

    /// <summary>Length of the (possibly compressed) payload of the last message.</summary>
    public long PayloadLength => _length;

    /// <summary>Consumes bytes from <paramref name="buffer"/> until a control frame or a message is complete.</summary>
    /// <exception cref="WebSocketProtocolException">The peer broke the protocol.</exception>
    public AssemblerStep Read(ref ReadOnlySequence<byte> buffer)
    {
        while (true)
        {
            if (!_inFrame)
            {
                if (!FrameCodec.TryReadHeader(buffer, out _frame))
                {
                    return AssemblerStep.NeedMoreData;
                }

                Validate(_frame);
                buffer = buffer.Slice(_frame.HeaderLength);
                _inFrame = true;
                _frameOffset = 0;
                if (!_frame.IsControl)
                {
                    BeginDataFrame();
                }
            }

            var remaining = _frame.PayloadLength - _frameOffset;
            if (remaining > 0)
            {
                if (buffer.IsEmpty)
                {
                    return AssemblerStep.NeedMoreData;
                }

                var take = (int)Math.Min(remaining, Math.Min(buffer.Length, int.MaxValue));
                var destination = Destination(take);
                buffer.Slice(0, take).CopyTo(destination);
                if (_frame.Masked)
                {
                    FrameCodec.ApplyMask(destination, _frame.MaskKey, _frameOffset);
                }

                buffer = buffer.Slice(take);
                _frameOffset += take;
                if (!_frame.IsControl)
                {
                    _length += take;
                }

                if (_frameOffset < _frame.PayloadLength)
                {
                    return AssemblerStep.NeedMoreData;
                }
            }

            _inFrame = false;
            if (_frame.IsControl)
            {
                ControlOpcode = _frame.Opcode;
                return AssemblerStep.Control;
            }

            if (_fragments.Count < MaxFragments)
            {
                _fragments.Add(new Fragment(_frame.PayloadLength));
            }
            else
            {
                _fragments[^1] = new Fragment(_fragments[^1].Length + _frame.PayloadLength);
            }

            // Validate text frame by frame so a bad fragment fails at once (RFC 6455 §8.1); compressed
            // text is validated after inflating.
            if (MessageType == Opcode.Text && !Compressed && !_utf8.TryValidate(PayloadSpan[(int)(_length - _frame.PayloadLength)..], _frame.Fin))
            {
                throw new WebSocketProtocolException(WebSocketCloseCodes.InvalidPayload, "Text message is not valid UTF-8.");
            }

            if (_frame.Fin)
            {
                _inMessage = false;
                return AssemblerStep.Message;
            }
        }
    }

    /// <summary>Bytes of the current data frame still to arrive; they can be read straight into <see cref="PayloadDestination"/>.</summary>
    public long PendingPayload => _inFrame && !_frame.IsControl ? _frame.PayloadLength - _frameOffset : 0;

    /// <summary>Where the next bytes of the current data frame go (at most <paramref name="max"/>).</summary>
    public Memory<byte> PayloadDestination(int max)
    {
        var count = (int)Math.Min(PendingPayload, max);
        if (_single is not null)
        {
            return _single.AsMemory((int)_frameOffset, count);
        }

        Reserve(count);
        return _pooled.AsMemory((int)_length, count);
    }

    /// <summary>Accepts <paramref name="count"/> bytes written into <see cref="PayloadDestination"/>: unmasks them in place.</summary>
    public void CommitPayload(int count)
    {
        var written = (_single is not null ? _single.AsSpan((int)_frameOffset, count) : _pooled.AsSpan((int)_length, count));
        if (_frame.Masked)
        {
            FrameCodec.ApplyMask(written, _frame.MaskKey, _frameOffset);
        }

        _frameOffset += count;
        _length += count;
    }

    /// <summary>The payload of the completed message (compressed if <see cref="Compressed"/>).</summary>
    public ReadOnlySpan<byte> PayloadSpan => PayloadMemory.Span;

    public ReadOnlyMemory<byte> PayloadMemory => _single ?? _pooled.AsMemory(0, (int)_length);

    /// <summary>Done with a compressed payload: a large pooled buffer goes back to the pool.</summary>
    public void ReleasePayload() => ReleasePooledIfLarge();

    /// <summary>Hands out the completed message's payload as an exact-size array (no copy for single-frame messages).</summary>
    public byte[] TakeContent()
    {
        byte[] content;
        if (_single is not null)
        {
            content = _single;
            _single = null;
        }
        else
        {
            content = ContentPool.Shared.Rent((int)_length);
            _pooled.AsSpan(0, (int)_length).CopyTo(content);
            ReleasePooledIfLarge();
        }

        return content;
    }

    public void Dispose()
    {
        if (_pooled is not null)
        {
            ArrayPool<byte>.Shared.Return(_pooled);
            _pooled = null;
        }
    }

    /// <summary>
    /// What is wrong with <paramref name="frame"/> whatever frames came before it, or null. The relay asks this of a ping
    /// or pong it passes on ahead of the assembler while a message is held, so both read the protocol alike.
    /// </summary>
    internal static string? FrameProblem(in FrameHeader frame, bool fromClient, bool allowCompression)
    {
        if (frame.Rsv2 || frame.Rsv3)
        {
            return "Reserved bits RSV2/RSV3 are set.";
        }

        // Before RSV1: a reserved control opcode with RSV1 set is wrong for its opcode, not for a misplaced RSV1.
        if (frame.Opcode is not (Opcode.Continuation or Opcode.Text or Opcode.Binary or Opcode.Close or Opcode.Ping or Opcode.Pong))
        {
            return $"Reserved opcode 0x{(byte)frame.Opcode:X}.";
        }

        if (frame.Rsv1)
        {
            // With permessage-deflate, RSV1 marks a compressed message on its first frame only (RFC 7692 §6): the
            // reason names what was wrong with this frame, since the extension itself was negotiated.
            if (!allowCompression)
            {
                return "Reserved bit RSV1 is set without a negotiated extension for it.";
            }

            if (frame.IsControl)
            {
                return $"RSV1 is set on a {frame.Opcode switch { Opcode.Close => "close", Opcode.Ping => "ping", _ => "pong" }} frame: permessage-deflate sets it on a message's first frame only (RFC 7692 §6).";
            }

            if (frame.Opcode == Opcode.Continuation)
            {
                return "RSV1 is set on a continuation frame: permessage-deflate sets it on a message's first frame only (RFC 7692 §6).";
            }
        }

        if (frame.Masked != fromClient)
        {
            return fromClient ? "Client frames must be masked." : "Server frames must not be masked.";
        }

        if (frame.IsControl && !frame.Fin)
        {
            return "Control frames must not be fragmented.";
        }

        if (frame.IsControl && frame.PayloadLength > FrameCodec.MaxControlPayload)
        {
            return "Control frame payload is longer than 125 bytes.";
        }

        return null;
    }

    private void Validate(in FrameHeader frame)
    {
        if (FrameProblem(frame, fromClient, AllowCompression) is { } problem)
        {
            throw Protocol(problem);
        }

        if (frame.IsControl)
        {
            return;
        }

        if (frame.Opcode == Opcode.Continuation && !_inMessage)
        {
            throw Protocol("Continuation frame without a message to continue.");
        }

        if (frame.Opcode != Opcode.Continuation && _inMessage)
        {
            throw Protocol("New data frame while a fragmented message is incomplete.");
        }

        var total = (frame.Opcode == Opcode.Continuation ? _length : 0) + frame.PayloadLength;
        var compressed = frame.Opcode == Opcode.Continuation ? Compressed : frame.Rsv1;
        if (total > (compressed ? MaxCompressedLength : maxMessageSize))
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.MessageTooBig, $"Message is larger than the maximum of {maxMessageSize} bytes.");
        }
    }

    private void BeginDataFrame()
    {
        if (_frame.Opcode != Opcode.Continuation)
        {
            _inMessage = true;
            MessageType = _frame.Opcode;
            Compressed = _frame.Rsv1;
            _utf8.Reset();
            _fragments.Clear();
            if (_fragments.Capacity > RetainedFragmentCapacity)
            {
                _fragments.Capacity = RetainedFragmentCapacity;
            }

            _length = 0;
            _single = null;
            if (_frame.Fin && !_frame.Rsv1 && _frame.PayloadLength <= EagerAllocationLimit)
            {
                // The common case: one frame, one message. Copy straight into the array the model keeps.
                _single = ContentPool.Shared.Rent((int)_frame.PayloadLength);
            }
        }

        // Anything else grows as its bytes arrive (Reserve), not as its header declares them.
    }

    private Span<byte> Destination(int take)
    {
        if (_frame.IsControl)
        {
            return _control.AsSpan((int)_frameOffset, take);
        }

        if (_single is not null)
        {
            return _single.AsSpan((int)_frameOffset, take);
        }

        Reserve(take);
        return _pooled.AsSpan((int)_length, take);
    }

    /// <summary>
    /// Makes room for <paramref name="count"/> more bytes of the message, doubling as it grows (never past the end of
    /// a final frame). Memory follows what arrived, not what a frame header declared: a peer that declares 64 MiB and
    /// sends nothing holds nothing, where an array of the declared size on every such connection would exhaust the
    /// process (or its container's limit) for a few bytes of traffic.
    /// </summary>
    private void Reserve(long count)
    {
        var needed = _length + count;
        if (_pooled is not null && _pooled.Length >= needed)
        {
            return;
        }

        var grown = Math.Max(needed, Math.Max(4096, (_pooled?.Length ?? 0) * 2L));
        if (_frame.Fin)
        {
            grown = Math.Max(needed, Math.Min(grown, _length + (_frame.PayloadLength - _frameOffset)));
        }

        EnsurePooledCapacity(grown);
    }

    private void EnsurePooledCapacity(long needed)
    {
        if (_pooled is not null && _pooled.Length >= needed)
        {
            return;
        }

        var size = (int)Math.Min(needed, Array.MaxLength);
        var next = ArrayPool<byte>.Shared.Rent(size);
        if (_pooled is not null)
        {
            _pooled.AsSpan(0, (int)_length).CopyTo(next);
            ArrayPool<byte>.Shared.Return(_pooled);
        }

        _pooled = next;
    }

    private void ReleasePooledIfLarge()
    {
        if (_pooled is { Length: > SmallBufferReturnThreshold })
        {
            ArrayPool<byte>.Shared.Return(_pooled);
            _pooled = null;
        }
    }

    private static WebSocketProtocolException Protocol(string message) => new(WebSocketCloseCodes.ProtocolError, message);
}
