using System.Buffers;

namespace WsWeb.Proxy.Listener;

internal enum ChunkedScanStatus
{
    /// <summary>The body goes on past the bytes seen so far.</summary>
    InBody,

    /// <summary>The body ended; what follows is the next request head.</summary>
    Done,

    /// <summary>Framing this scanner does not vouch for; where the body ends is left unknown.</summary>
    Unknown,
}

/// <summary>
/// Sans-IO tracker of where a chunked request body ends, fed the bytes Kestrel consumes as that body, so
/// <see cref="RequestHeadReader"/> knows where the next request head starts. Kestrel parses the body itself; this
/// only has to agree with it. It is deliberately narrower than Kestrel: a chunk line is hex digits, an optional
/// extension without CR or LF, then CRLF; after the last chunk (<c>0\r\n</c>) come trailer field lines, each ending in
/// CRLF (RFC 9112 §7.1.2; Kestrel parses them as header lines and refuses a malformed one), then the empty line that
/// ends the body. Anything else (a bare LF or CR anywhere) is <see cref="ChunkedScanStatus.Unknown"/>, and the caller
/// stops looking for heads rather than guess.
/// </summary>
internal struct ChunkedBodyScanner
{
    private const long MaxChunkSize = int.MaxValue;

    private State _state;
    private long _size;
    private bool _hasDigit;

    private enum State
    {
        Size,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,

        /// <summary>At the start of a trailer line: CR begins the empty line that ends the body, anything else a field.</summary>
        TrailerCr,
        TrailerLf,

        /// <summary>Inside a trailer field line.</summary>
        Field,
        FieldLf,
        Done,
        Unknown,
    }

    /// <param name="used">Bytes of <paramref name="consumed"/> that belong to the body (all of them unless it ended inside).</param>
    public ChunkedScanStatus Feed(in ReadOnlySequence<byte> consumed, out long used)
    {
        used = 0;
        foreach (var memory in consumed)
        {
            var span = memory.Span;
            var i = 0;
            while (i < span.Length && _state is not (State.Done or State.Unknown))
            {
                if (_state == State.Data)
                {
                    // Chunk data is skipped in bulk: no per-byte work on the payload.
                    var take = (int)Math.Min(_size, span.Length - i);
                    _size -= take;
                    i += take;
                    if (_size == 0)
                    {
                        _state = State.DataCr;
                    }

                    continue;
                }

                if (_state == State.Field)
                {
                    // A trailer field's bytes up to its line's end are skipped in bulk too.
                    var end = span[i..].IndexOfAny((byte)'\r', (byte)'\n');
                    if (end < 0)
                    {
                        i = span.Length;
                        continue;
                    }

                    i += end;
                }

                Step(span[i++]);
            }

            used += i;
            if (_state is State.Done or State.Unknown)
            {
                break;
            }
        }

        return _state switch
        {
            State.Done => ChunkedScanStatus.Done,
            State.Unknown => ChunkedScanStatus.Unknown,
            _ => ChunkedScanStatus.InBody,
        };
    }

    private void Step(byte b)
    {
        switch (_state)
        {
            case State.Size when HexValue(b) is var digit and >= 0:
                _size = (_size * 16) + digit;
                _hasDigit = true;
                _state = _size > MaxChunkSize ? State.Unknown : State.Size;
                break;
            case State.Size when _hasDigit && b == (byte)';':
                _state = State.Extension;
                break;
            case State.Size or State.Extension when _hasDigit && b == (byte)'\r':
                _state = State.SizeLf;
                break;
            case State.Extension when b is not ((byte)'\r' or (byte)'\n'):
                break;
            case State.SizeLf when b == (byte)'\n':
                _state = _size == 0 ? State.TrailerCr : State.Data;
                break;
            case State.DataCr when b == (byte)'\r':
                _state = State.DataLf;
                break;
            case State.DataLf when b == (byte)'\n':
                _state = State.Size;
                _size = 0;
                _hasDigit = false;
                break;
            case State.TrailerCr when b == (byte)'\r':
                _state = State.TrailerLf;
                break;
            case State.TrailerCr when b != (byte)'\n':
                _state = State.Field;
                break;
            case State.TrailerLf when b == (byte)'\n':
                _state = State.Done;
                break;
            case State.Field when b == (byte)'\r':
                _state = State.FieldLf;
                break;
            case State.FieldLf when b == (byte)'\n':
                _state = State.TrailerCr;
                break;
            default:
                _state = State.Unknown;
                break;
        }
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
