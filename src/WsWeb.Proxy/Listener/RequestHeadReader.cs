using System.Buffers;
using System.IO.Pipelines;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// The reader Kestrel's HTTP/1.1 layer parses a proxy connection from. At the start of every request head it shows
/// a <c>ws://</c> or <c>wss://</c> target as <c>http://</c> or <c>https://</c> (Kestrel answers any other scheme with an
/// empty 400), as mitmproxy reads each request on a connection on its own; body bytes always pass as they are.
/// </summary>
/// <remarks>
/// Where a head starts comes from Kestrel itself. Kestrel reads a head only once the previous request's body is
/// consumed (HttpProtocol.ProcessRequests: the application runs, the rest of the body is drained, then the next
/// head is read), and when the application starts, Kestrel has consumed exactly the head. So
/// <see cref="ProxyRequestGate"/> reports each request's framing as Kestrel decided it (<see cref="RequestStarted"/>),
/// and this reader counts the body's bytes as Kestrel consumes them: a Content-Length is counted down, a chunked body
/// is followed by <see cref="ChunkedBodyScanner"/>. Whenever it cannot be sure (an upgrade, framing the scanner does
/// not vouch for) it stops rewriting and passes every call straight through, so WebSocket traffic that Kestrel still
/// reads after an upgrade costs nothing here.
/// </remarks>
internal sealed class RequestHeadReader(PipeReader inner) : PipeReader
{
    private Mode _mode = Mode.Head;

    /// <summary>The next byte the connection yields is the first of a request head.</summary>
    private bool _atHeadStart = true;

    private long _bodyLeft;
    private ChunkedBodyScanner _chunks;

    /// <summary>Follows the head Kestrel is reading; <see cref="_headTracked"/> says whether it saw all of it.</summary>
    private HeadFieldScanner _headFields;
    private bool _headTracked = true;

    /// <summary>The rewritten start of a request line (method, space, http scheme), ahead of what <c>inner</c> holds.</summary>
    private ReadOnlyMemory<byte> _prefix;

    private ReadOnlySequence<byte> _innerBuffer;
    private ReadOnlySequence<byte> _returned;

    private enum Mode
    {
        /// <summary>Kestrel is reading a request head (or waits for one).</summary>
        Head,

        /// <summary>Kestrel is reading a body of <see cref="_bodyLeft"/> more bytes.</summary>
        ContentLength,

        /// <summary>Kestrel is reading a chunked body.</summary>
        Chunked,

        /// <summary>Where a head would start is not known (an upgrade, or unusual framing): every call passes through.</summary>
        PassThrough,
    }

    /// <summary>
    /// Whether the head of the request the application is handling had a Content-Length field line: true or false
    /// when this reader saw all of the head, null when it did not (it stopped following the connection).
    /// </summary>
    public bool? HeadHadContentLength { get; private set; }

    /// <summary>
    /// The Connection field value of the request the application is handling, as the client sent it: null when the head
    /// had none, or when this reader did not see all of it (<see cref="HeadHadContentLength"/> is null then).
    /// </summary>
    public string? HeadConnection { get; private set; }

    /// <summary>The head of the request the application is handling had a Content-Length that is not digits alone (see <see cref="HeadFieldScanner"/>).</summary>
    public bool HeadContentLengthMalformed { get; private set; }

    /// <summary>Kestrel is reading (or waits for) a request head, as far as this reader follows the connection: not a body, an upgraded stream, or bytes it no longer follows.</summary>
    public bool ReadingHead => _mode == Mode.Head;

    /// <summary>Called when the application starts a request: Kestrel has consumed its head, and its body follows.</summary>
    public void RequestStarted(long? contentLength, bool chunked, bool upgradable)
    {
        var tracked = _mode == Mode.Head && _headTracked && _prefix.IsEmpty;
        HeadHadContentLength = tracked ? _headFields.HasContentLength : null;
        HeadConnection = tracked ? _headFields.Connection : null;
        HeadContentLengthMalformed = tracked && _headFields.ContentLengthMalformed;
        _headFields = default;
        if (_mode != Mode.Head || !_prefix.IsEmpty)
        {
            StopRewriting();
            return;
        }

        if (upgradable)
        {
            // What follows a request that may upgrade belongs to the upgraded protocol until RequestEnded says otherwise.
            _mode = Mode.PassThrough;
        }
        else if (chunked)
        {
            _mode = Mode.Chunked;
            _chunks = default;
        }
        else if (contentLength > 0)
        {
            _mode = Mode.ContentLength;
            _bodyLeft = contentLength.Value;
        }
        else
        {
            _atHeadStart = true;
        }
    }

    /// <summary>
    /// Called when the application is done with an upgradable request it did not upgrade: Kestrel gives such a request
    /// no body, so the next bytes are the next head.
    /// </summary>
    public void UpgradeDeclined()
    {
        _mode = Mode.Head;
        _atHeadStart = true;
        _headTracked = true;
    }

    /// <summary>Leaves every later byte to Kestrel as it is.</summary>
    public void StopRewriting()
    {
        _mode = Mode.PassThrough;
        _atHeadStart = false;
        _headTracked = false;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_mode == Mode.PassThrough && _prefix.IsEmpty)
        {
            return inner.ReadAsync(cancellationToken);
        }

        return ReadTrackedAsync(cancellationToken);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (_mode == Mode.PassThrough && _prefix.IsEmpty)
        {
            return inner.TryRead(out result);
        }

        if (!inner.TryRead(out result))
        {
            return false;
        }

        // The bytes after the scheme are buffered already, so the second read cannot come back empty handed.
        if (StartRewrite(result) && !inner.TryRead(out result))
        {
            return false;
        }

        result = Track(result);
        return true;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_returned.IsEmpty && _prefix.IsEmpty)
        {
            // Passed through (or nothing to count): positions are inner's own.
            _innerBuffer = default;
            inner.AdvanceTo(consumed, examined);
            return;
        }

        var returned = _returned;
        var innerBuffer = _innerBuffer;
        _returned = default;
        _innerBuffer = default;
        if (_mode == Mode.Head)
        {
            // The head's field lines are looked at before inner may release them.
            _headFields.Feed(returned.Slice(returned.Start, consumed));
        }

        if (!_prefix.IsEmpty)
        {
            AdvancePastPrefix(returned, innerBuffer, consumed, examined);
            return;
        }

        var consumedLength = returned.Slice(returned.Start, consumed).Length;
        if (consumedLength > 0)
        {
            // The body's bytes are counted before inner may release them.
            Consumed(returned.Slice(0, consumedLength));
        }

        inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    private async ValueTask<ReadResult> ReadTrackedAsync(CancellationToken cancellationToken)
    {
        var result = await inner.ReadAsync(cancellationToken);
        if (StartRewrite(result))
        {
            result = await inner.ReadAsync(cancellationToken);
        }

        return Track(result);
    }

    /// <summary>At the start of a head with a WebSocket target, consumes its method and scheme and keeps them, rewritten, as the prefix.</summary>
    /// <returns>True when inner was advanced and has to be read again.</returns>
    private bool StartRewrite(in ReadResult result)
    {
        if (!_atHeadStart || _mode != Mode.Head || !_prefix.IsEmpty || result.IsCanceled)
        {
            return false;
        }

        // Empty lines before a request line are skipped, by Kestrel as RFC 9112 §2.2 asks (some clients send a CRLF
        // after a body); they stay in the prefix, so Kestrel still sees them.
        var buffer = result.Buffer;
        var lineBreaks = LeadingLineBreaks(buffer);
        if (WebSocketSchemeTarget.Find(buffer.Slice(lineBreaks), out var schemeStart, out var schemeLength) != WebSocketSchemeStatus.Found)
        {
            // Too short to tell yet stays at the head's start: Kestrel waits for the whole request line, and so does the next read here.
            return false;
        }

        schemeStart += (int)lineBreaks;
        var httpScheme = schemeLength == 3 ? "https"u8 : "http"u8;
        var prefix = new byte[schemeStart + httpScheme.Length];
        buffer.Slice(0, schemeStart).CopyTo(prefix);
        httpScheme.CopyTo(prefix.AsSpan(schemeStart));
        _prefix = prefix;
        _atHeadStart = false;
        inner.AdvanceTo(buffer.GetPosition(schemeStart + schemeLength));
        return true;
    }

    private ReadResult Track(ReadResult result)
    {
        _innerBuffer = result.Buffer;
        if (_prefix.IsEmpty)
        {
            _returned = result.Buffer;
            return result;
        }

        // A copy, only while the rewritten start of one request line lasts.
        var combined = new byte[_prefix.Length + result.Buffer.Length];
        _prefix.Span.CopyTo(combined);
        result.Buffer.CopyTo(combined.AsSpan(_prefix.Length));
        _returned = new ReadOnlySequence<byte>(combined);
        return new ReadResult(_returned, result.IsCanceled, result.IsCompleted);
    }

    private void AdvancePastPrefix(in ReadOnlySequence<byte> returned, in ReadOnlySequence<byte> innerBuffer, SequencePosition consumed, SequencePosition examined)
    {
        var prefixLength = _prefix.Length;
        var consumedAt = returned.Slice(returned.Start, consumed).Length;
        var examinedAt = Math.Max(consumedAt, returned.Slice(returned.Start, examined).Length);
        if (consumedAt >= prefixLength)
        {
            _prefix = ReadOnlyMemory<byte>.Empty;
            inner.AdvanceTo(innerBuffer.GetPosition(consumedAt - prefixLength), innerBuffer.GetPosition(examinedAt - prefixLength));
        }
        else
        {
            _prefix = _prefix[(int)consumedAt..];
            inner.AdvanceTo(innerBuffer.Start, innerBuffer.GetPosition(Math.Max(0, examinedAt - prefixLength)));
        }
    }

    /// <summary>Kestrel consumed <paramref name="bytes"/>: part of a head, or of a body whose end is the next head's start.</summary>
    private void Consumed(in ReadOnlySequence<byte> bytes)
    {
        switch (_mode)
        {
            case Mode.Head:
                // Kestrel may take the empty lines before a request line on their own: the head still starts after them.
                _atHeadStart &= LeadingLineBreaks(bytes) == bytes.Length;
                break;
            case Mode.ContentLength:
                _bodyLeft -= bytes.Length;
                if (_bodyLeft < 0)
                {
                    // Kestrel read past the length it parsed: something here is wrong, so guess nothing.
                    StopRewriting();
                }
                else if (_bodyLeft == 0)
                {
                    _mode = Mode.Head;
                    _atHeadStart = true;
                }

                break;
            case Mode.Chunked:
                var status = _chunks.Feed(bytes, out var used);
                if (status == ChunkedScanStatus.Done && used == bytes.Length)
                {
                    _mode = Mode.Head;
                    _atHeadStart = true;
                }
                else if (status != ChunkedScanStatus.InBody)
                {
                    StopRewriting();
                }

                break;
        }
    }

    private static long LeadingLineBreaks(in ReadOnlySequence<byte> bytes)
    {
        var reader = new SequenceReader<byte>(bytes);
        return reader.AdvancePastAny((byte)'\r', (byte)'\n');
    }
}
