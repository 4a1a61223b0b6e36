using System.Buffers;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Sans-IO check of whether a request head, fed as Kestrel consumes it, has a <c>Content-Length</c> field line.
/// Kestrel hides that once the head also has Transfer-Encoding: it frames the body by Transfer-Encoding and shows the
/// Content-Length as <c>X-Content-Length</c> (dotnet/aspnetcore#43523), which is also an ordinary header a client
/// may send itself. The head's bytes are the only way to tell the two apart. A field name ends at its colon (Kestrel
/// refuses whitespace before it) and is compared without regard to case, as Kestrel does.
/// </summary>
internal struct ContentLengthFieldScanner
{
    /// <summary>Bytes of <c>content-length:</c> matched at the start of the current line; -1 once the line is something else.</summary>
    private int _matched;

    public bool Found { get; private set; }

    private static ReadOnlySpan<byte> Name => "content-length:"u8;

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
            if (_matched < 0)
            {
                // The rest of a line that is not the field: skipped in bulk.
                var lineFeed = span[i..].IndexOf((byte)'\n');
                if (lineFeed < 0)
                {
                    return;
                }

                i += lineFeed + 1;
                _matched = 0;
                continue;
            }

            var b = span[i++];
            if (b == (byte)'\n')
            {
                _matched = 0;
                continue;
            }

            if (b is >= (byte)'A' and <= (byte)'Z')
            {
                b |= 0x20;
            }

            if (b != Name[_matched])
            {
                _matched = -1;
            }
            else if (++_matched == Name.Length)
            {
                Found = true;
                _matched = -1;
            }
        }
    }
}
