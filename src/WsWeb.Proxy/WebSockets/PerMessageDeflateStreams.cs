using System.Buffers;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Feeds one message's compressed payload plus the 00 00 FF FF tail (RFC 7692 §7.2.2) to a
/// decompressing <see cref="System.IO.Compression.DeflateStream"/>. One instance lives as long as the
/// inflater, so the DeflateStream (and its zlib window) survives between messages.
/// </summary>
internal sealed class DeflateInputStream : ReadOnlyStream
{
    private static readonly byte[] Tail = [0x00, 0x00, 0xFF, 0xFF];

    private ReadOnlySequence<byte> _remaining;
    private int _tailPosition = Tail.Length;

    /// <summary>Bytes of the current payload not yet taken by the reader (the tail not counted).</summary>
    public long PayloadRemaining => _remaining.Length;

    /// <summary>True once the payload and the tail have both been read.</summary>
    public bool IsDrained => _remaining.IsEmpty && _tailPosition == Tail.Length;

    public void SetPayload(ReadOnlySequence<byte> payload)
    {
        _remaining = payload;
        _tailPosition = 0;
    }

    /// <summary>Forgets whatever is left (a stream that ended early leaves the tail unread).</summary>
    public void Clear()
    {
        _remaining = ReadOnlySequence<byte>.Empty;
        _tailPosition = Tail.Length;
    }

    public override int Read(Span<byte> buffer)
    {
        var written = 0;
        while (written < buffer.Length && !_remaining.IsEmpty)
        {
            var first = _remaining.FirstSpan;
            var count = Math.Min(first.Length, buffer.Length - written);
            first[..count].CopyTo(buffer[written..]);
            written += count;
            _remaining = _remaining.Slice(count);
        }

        if (written < buffer.Length && _tailPosition < Tail.Length)
        {
            var count = Math.Min(Tail.Length - _tailPosition, buffer.Length - written);
            Tail.AsSpan(_tailPosition, count).CopyTo(buffer[written..]);
            _tailPosition += count;
            written += count;
        }

        return written;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }
}

/// <summary>
/// Takes a compressing <see cref="System.IO.Compression.DeflateStream"/>'s output and writes it to the
/// current message's <see cref="IBufferWriter{T}"/>, holding back the last four bytes so the 00 00 FF FF
/// a sync flush ends with can be dropped (RFC 7692 §7.2.1) without un-writing anything.
/// </summary>
internal sealed class DeflateOutputStream : WriteOnlyStream
{
    private const int TailLength = 4;

    private readonly byte[] _held = new byte[TailLength];
    private int _heldCount;
    private IBufferWriter<byte>? _target;

    /// <summary>Bytes passed to the target for the current message.</summary>
    public long Written { get; private set; }

    /// <summary>Starts a message; null detaches, so a disposing DeflateStream's final block goes nowhere.</summary>
    public void SetTarget(IBufferWriter<byte>? target)
    {
        _target = target;
        _heldCount = 0;
        Written = 0;
    }

    /// <summary>Ends a message: true if the held-back bytes were the sync-flush tail, which is then dropped.</summary>
    public bool TryEndWithFlushTail()
    {
        var ok = _heldCount == TailLength && _held.AsSpan().SequenceEqual((ReadOnlySpan<byte>)[0x00, 0x00, 0xFF, 0xFF]);
        _heldCount = 0;
        return ok;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_target is null || buffer.IsEmpty)
        {
            return;
        }

        // Everything except the newest four bytes is final: release the oldest held bytes first.
        var release = _heldCount + buffer.Length - TailLength;
        if (release > 0)
        {
            var fromHeld = Math.Min(release, _heldCount);
            if (fromHeld > 0)
            {
                _target.Write(_held.AsSpan(0, fromHeld));
                _held.AsSpan(fromHeld, _heldCount - fromHeld).CopyTo(_held);
                _heldCount -= fromHeld;
            }

            var fromBuffer = release - fromHeld;
            if (fromBuffer > 0)
            {
                _target.Write(buffer[..fromBuffer]);
                buffer = buffer[fromBuffer..];
            }

            Written += release;
        }

        buffer.CopyTo(_held.AsSpan(_heldCount));
        _heldCount += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush()
    {
    }
}
