using System.Buffers;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Sans-IO look at two field lines of a request head, fed as Kestrel consumes it, that Kestrel does not show the
/// application as the client sent them:
/// <list type="bullet">
/// <item><c>Content-Length</c>: Kestrel hides it once the head also has Transfer-Encoding: it frames the body by
/// Transfer-Encoding and shows the Content-Length as <c>X-Content-Length</c> (dotnet/aspnetcore#43523), which is also an
/// ordinary header a client may send itself. The head's bytes are the only way to tell the two apart.</item>
/// <item><c>Connection</c>: Kestrel reduces its value to the tokens it acts on (<c>close</c>, <c>keep-alive</c>,
/// <c>upgrade</c>) when it lists one of them, dropping the names of other hop-by-hop fields the client listed
/// (RFC 9110 §7.6.1), which the proxy must not forward.</item>
/// </list>
/// It also checks each Content-Length value is digits alone (RFC 9110 §8.6): Kestrel reads <c>+7</c> and <c>-0</c> as
/// numbers, and a proxy that forwards a length its client wrote in a form the server may read differently, or not at
/// all, is how bodies get smuggled.
/// A field name ends at its colon (Kestrel refuses whitespace before it) and is compared without regard to case, as
/// Kestrel does. Nothing is allocated unless the head has a Connection field line.
/// </summary>
internal struct HeadFieldScanner
{
    /// <summary>Bytes of <c>content-length:</c> matched at the start of the current line; -1 once the line is something else.</summary>
    private int _contentLength;

    /// <summary>Bytes of <c>connection:</c> matched at the start of the current line; -1 once the line is something else.</summary>
    private int _connection;

    /// <summary>The current line is a Connection field, and its value is being kept.</summary>
    private bool _inConnectionValue;

    /// <summary>The values of the head's Connection field lines so far, joined with ", ".</summary>
    private byte[]? _connectionValue;
    private int _connectionLength;

    /// <summary>Where the current Connection line's value starts in <see cref="_connectionValue"/>, and where it started before its separator.</summary>
    private int _lineValueStart;
    private int _beforeSeparator;

    /// <summary>The current line is a Content-Length field, and its value is being checked.</summary>
    private bool _inContentLengthValue;

    /// <summary>Where the current Content-Length value is: before its digits, in them, or after them.</summary>
    private ValuePart _contentLengthPart;

    private enum ValuePart : byte
    {
        Before,
        Digits,
        After,
    }

    public bool HasContentLength { get; private set; }

    /// <summary>A Content-Length field line's value was not digits alone (whitespace around them aside).</summary>
    public bool ContentLengthMalformed { get; private set; }

    /// <summary>The head's Connection field value as the client sent it (several lines joined with ", "), or null without one.</summary>
    public readonly string? Connection =>
        _connectionLength == 0 ? null : System.Text.Encoding.Latin1.GetString(_connectionValue!, 0, _connectionLength);

    private static ReadOnlySpan<byte> ContentLengthName => "content-length:"u8;

    private static ReadOnlySpan<byte> ConnectionName => "connection:"u8;

    public void Feed(in ReadOnlySequence<byte> bytes)
    {
        foreach (var memory in bytes)
        {
            Feed(memory.Span);
        }
    }

    private void Feed(ReadOnlySpan<byte> span)
    {
        var i = 0;
        while (i < span.Length)
        {
            var lineFeed = -1;
            if (_inContentLengthValue)
            {
                i = CheckContentLength(span, i);
                continue;
            }

            if (_inConnectionValue || (_contentLength < 0 && _connection < 0))
            {
                // The rest of a line: kept when it is a Connection value, skipped in bulk otherwise.
                lineFeed = span[i..].IndexOf((byte)'\n');
                var end = lineFeed < 0 ? span.Length : i + lineFeed;
                if (_inConnectionValue)
                {
                    AppendValue(span[i..end]);
                }

                if (lineFeed < 0)
                {
                    return;
                }

                i = end + 1;
                EndLine();
                continue;
            }

            var b = span[i++];
            if (b == (byte)'\n')
            {
                EndLine();
                continue;
            }

            if (b is >= (byte)'A' and <= (byte)'Z')
            {
                b |= 0x20;
            }

            _contentLength = Match(_contentLength, b, ContentLengthName);
            if (_contentLength == ContentLengthName.Length)
            {
                HasContentLength = true;
                _contentLength = -1;
                _inContentLengthValue = true;
                _contentLengthPart = ValuePart.Before;
            }

            _connection = Match(_connection, b, ConnectionName);
            if (_connection == ConnectionName.Length)
            {
                _connection = -1;
                StartValue();
            }
        }
    }

    /// <summary>Checks a Content-Length value's bytes from <paramref name="i"/> to the line's end; returns where it stopped.</summary>
    private int CheckContentLength(ReadOnlySpan<byte> span, int i)
    {
        for (; i < span.Length; i++)
        {
            var b = span[i];
            if (b == (byte)'\n')
            {
                EndLine();
                return i + 1;
            }

            if (b is >= (byte)'0' and <= (byte)'9')
            {
                ContentLengthMalformed |= _contentLengthPart == ValuePart.After;
                _contentLengthPart = ValuePart.Digits;
            }
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\r')
            {
                // A CR is only ever allowed before the LF, and Kestrel refuses one elsewhere.
                _contentLengthPart = _contentLengthPart == ValuePart.Before ? ValuePart.Before : ValuePart.After;
            }
            else
            {
                ContentLengthMalformed = true;
            }
        }

        return i;
    }

    private static int Match(int matched, byte b, ReadOnlySpan<byte> name) =>
        matched < 0 || b != name[matched] ? -1 : matched + 1;

    private void EndLine()
    {
        if (_inContentLengthValue)
        {
            ContentLengthMalformed |= _contentLengthPart == ValuePart.Before;
            _inContentLengthValue = false;
        }

        if (_inConnectionValue)
        {
            // Whitespace around the value is not part of it (RFC 9112 §5.1); an empty value leaves no separator behind.
            while (_connectionLength > _lineValueStart && _connectionValue![_connectionLength - 1] is (byte)'\r' or (byte)' ' or (byte)'\t')
            {
                _connectionLength--;
            }

            if (_connectionLength == _lineValueStart)
            {
                _connectionLength = _beforeSeparator;
            }

            _inConnectionValue = false;
        }

        _contentLength = 0;
        _connection = 0;
    }

    private void StartValue()
    {
        _inConnectionValue = true;
        _beforeSeparator = _connectionLength;
        if (_connectionLength > 0)
        {
            AppendRaw(", "u8);
        }

        _lineValueStart = _connectionLength;
    }

    private void AppendValue(ReadOnlySpan<byte> bytes)
    {
        if (_connectionLength == _lineValueStart)
        {
            bytes = bytes.TrimStart(" \t"u8);
        }

        AppendRaw(bytes);
    }

    private void AppendRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        if (_connectionValue is null || _connectionValue.Length - _connectionLength < bytes.Length)
        {
            // The head's size is bounded by Kestrel's MaxRequestHeadersTotalSize, and so is this.
            Array.Resize(ref _connectionValue, Math.Max(64, Math.Max(_connectionLength + bytes.Length, (_connectionValue?.Length ?? 0) * 2)));
        }

        bytes.CopyTo(_connectionValue.AsSpan(_connectionLength));
        _connectionLength += bytes.Length;
    }
}
