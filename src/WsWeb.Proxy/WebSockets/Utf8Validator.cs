using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Validates a text message's UTF-8 as its fragments arrive (RFC 6455 §8.1), so an invalid message is
/// failed at the first bad byte rather than after it has been buffered whole.
/// </summary>
/// <remarks>
/// A struct with no heap state: it lives in the pump's per-direction state and only carries the at
/// most three bytes of a sequence split across fragments. After <see cref="TryValidate"/> returns false
/// the message is invalid for good; call <see cref="Reset"/> before the next one.
/// </remarks>
internal struct Utf8Validator
{
    // Up to three bytes of an incomplete sequence, oldest in the low byte.
    private uint _pending;
    private int _pendingCount;

    /// <summary>True while a multi-byte sequence is split across fragments.</summary>
    public readonly bool HasPendingBytes => _pendingCount != 0;

    /// <summary>Checks the next piece of a text message.</summary>
    /// <param name="chunk">The next payload bytes (after unmasking and decompression).</param>
    /// <param name="isFinal">True for the last piece of the message: an unfinished sequence is then invalid.</param>
    /// <returns>False as soon as the bytes seen so far cannot be the start of valid UTF-8.</returns>
    public bool TryValidate(ReadOnlySpan<byte> chunk, bool isFinal)
    {
        if (_pendingCount != 0 && !TryCompletePending(ref chunk))
        {
            return false;
        }

        if (_pendingCount == 0 && !chunk.IsEmpty)
        {
            var tailStart = IncompleteTailStart(chunk);
            if (!Utf8.IsValid(chunk[..tailStart]))
            {
                return false;
            }

            var tail = chunk[tailStart..];
            if (!tail.IsEmpty)
            {
                // Only a prefix of some valid sequence may wait for the next fragment; "F4 90" or "ED A0"
                // can never complete, and Rune reports them as invalid right away.
                if (Rune.DecodeFromUtf8(tail, out _, out _) != OperationStatus.NeedMoreData)
                {
                    return false;
                }

                for (var i = 0; i < tail.Length; i++)
                {
                    _pending |= (uint)tail[i] << (8 * i);
                }

                _pendingCount = tail.Length;
            }
        }

        if (!isFinal)
        {
            return true;
        }

        var complete = _pendingCount == 0;
        Reset();
        return complete;
    }

    public void Reset()
    {
        _pending = 0;
        _pendingCount = 0;
    }

    /// <summary>Adds bytes from the chunk to the pending prefix until it decodes, is known bad, or the chunk runs out.</summary>
    private bool TryCompletePending(ref ReadOnlySpan<byte> chunk)
    {
        Span<byte> sequence = stackalloc byte[4];
        for (var i = 0; i < _pendingCount; i++)
        {
            sequence[i] = (byte)(_pending >> (8 * i));
        }

        var take = Math.Min(SequenceLength(sequence[0]) - _pendingCount, chunk.Length);
        chunk[..take].CopyTo(sequence[_pendingCount..]);
        var length = _pendingCount + take;
        switch (Rune.DecodeFromUtf8(sequence[..length], out _, out var consumed))
        {
            case OperationStatus.Done:
                chunk = chunk[(consumed - _pendingCount)..];
                Reset();
                return true;
            case OperationStatus.NeedMoreData:
                // The chunk was too short to finish the sequence, so all of it is now pending.
                _pending = 0;
                for (var i = 0; i < length; i++)
                {
                    _pending |= (uint)sequence[i] << (8 * i);
                }

                _pendingCount = length;
                chunk = [];
                return true;
            default:
                return false;
        }
    }

    /// <summary>Where a sequence cut off by the end of the chunk starts, or the chunk's length if none is.</summary>
    private static int IncompleteTailStart(ReadOnlySpan<byte> chunk)
    {
        // A cut sequence has at most three bytes here, so its lead byte is among the last three.
        for (var i = chunk.Length - 1; i >= Math.Max(0, chunk.Length - 3); i--)
        {
            if (!IsContinuation(chunk[i]))
            {
                return chunk.Length - i < SequenceLength(chunk[i]) ? i : chunk.Length;
            }
        }

        return chunk.Length;
    }

    private static bool IsContinuation(byte b) => (b & 0xC0) == 0x80;

    /// <summary>The length a lead byte announces by its bit pattern; bytes that are never leads count as 1 and fail decoding.</summary>
    private static int SequenceLength(byte lead) => lead switch
    {
        < 0xC0 => 1,
        < 0xE0 => 2,
        < 0xF0 => 3,
        < 0xF8 => 4,
        _ => 1,
    };
}
