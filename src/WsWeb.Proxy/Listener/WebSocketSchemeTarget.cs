using System.Buffers;
using System.IO.Pipelines;

namespace WsWeb.Proxy.Listener;

internal enum WebSocketSchemeStatus
{
    /// <summary>The request line does not start with a <c>ws://</c> or <c>wss://</c> target.</summary>
    None,

    /// <summary>Too few bytes yet to tell.</summary>
    Incomplete,

    /// <summary>An absolute-form target with a WebSocket scheme.</summary>
    Found,
}

/// <summary>
/// Finds an absolute-form request target with a WebSocket scheme (<c>GET ws://host/ HTTP/1.1</c>), as some
/// clients send it to an HTTP proxy. Kestrel's HTTP parser accepts only http and https targets and answers
/// anything else with an empty 400, so the connection middleware rewrites the scheme before Kestrel sees it.
/// </summary>
internal static class WebSocketSchemeTarget
{
    /// <summary>Longer than any method a client sends before a WebSocket target; past it, this is not one.</summary>
    private const int MaxMethodLength = 24;

    /// <param name="schemeStart">Offset of the scheme, just after the method and its space.</param>
    /// <param name="schemeLength">2 for ws, 3 for wss.</param>
    public static WebSocketSchemeStatus Find(in ReadOnlySequence<byte> buffer, out int schemeStart, out int schemeLength)
    {
        schemeStart = 0;
        schemeLength = 0;
        Span<byte> head = stackalloc byte[MaxMethodLength + 7];
        var length = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, length).CopyTo(head);
        head = head[..length];

        var space = head.IndexOf((byte)' ');
        if (space < 0)
        {
            return length < MaxMethodLength && IsToken(head) ? WebSocketSchemeStatus.Incomplete : WebSocketSchemeStatus.None;
        }

        if (space == 0 || !IsToken(head[..space]))
        {
            return WebSocketSchemeStatus.None;
        }

        var target = head[(space + 1)..];
        foreach (var scheme in (ReadOnlySpan<string>)["wss://", "ws://"])
        {
            var compared = Math.Min(target.Length, scheme.Length);
            if (!EqualsIgnoreCase(target[..compared], scheme.AsSpan(0, compared)))
            {
                continue;
            }

            if (compared < scheme.Length)
            {
                return WebSocketSchemeStatus.Incomplete;
            }

            schemeStart = space + 1;
            schemeLength = scheme.Length - "://".Length;
            return WebSocketSchemeStatus.Found;
        }

        return WebSocketSchemeStatus.None;
    }

    /// <summary>
    /// Consumes the method and the WebSocket scheme from <paramref name="input"/> and returns a reader that
    /// yields them again as the matching HTTP scheme (ws → http, wss → https), then the connection's bytes.
    /// </summary>
    public static PipeReader Rewrite(PipeReader input, in ReadOnlySequence<byte> buffer, int schemeStart, int schemeLength)
    {
        var httpScheme = schemeLength == 3 ? "https"u8 : "http"u8;
        var prefix = new byte[schemeStart + httpScheme.Length];
        buffer.Slice(0, schemeStart).CopyTo(prefix);
        httpScheme.CopyTo(prefix.AsSpan(schemeStart));
        input.AdvanceTo(buffer.GetPosition(schemeStart + schemeLength));
        return new PrefixedPipeReader(prefix, input);
    }

    private static bool IsToken(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b is < (byte)'!' or > (byte)'~')
            {
                return false;
            }
        }

        return true;
    }

    /// <param name="lower">Lower-case ASCII.</param>
    private static bool EqualsIgnoreCase(ReadOnlySpan<byte> bytes, ReadOnlySpan<char> lower)
    {
        for (var i = 0; i < lower.Length; i++)
        {
            var b = bytes[i];
            if (b is >= (byte)'A' and <= (byte)'Z')
            {
                b |= 0x20;
            }

            if (b != lower[i])
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// Yields a few bytes of its own ahead of what <c>inner</c> reads, then steps aside: once the prefix is consumed,
/// every call goes straight to <c>inner</c>, whose positions the relay later reads from after an upgrade.
/// While the prefix lasts, each read is a copy (only the start of one request head).
/// </summary>
internal sealed class PrefixedPipeReader(byte[] prefix, PipeReader inner) : PipeReader
{
    private ReadOnlyMemory<byte> _prefix = prefix;
    private ReadOnlySequence<byte> _innerBuffer;
    private ReadOnlySequence<byte> _combined;
    private bool _reading;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var result = await inner.ReadAsync(cancellationToken);
        return Combine(result);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (!inner.TryRead(out var innerResult))
        {
            result = default;
            return false;
        }

        result = Combine(innerResult);
        return true;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (!_reading)
        {
            inner.AdvanceTo(consumed, examined);
            return;
        }

        _reading = false;
        var prefixLength = _prefix.Length;
        var consumedAt = _combined.Slice(0, consumed).Length;
        var examinedAt = Math.Max(consumedAt, _combined.Slice(0, examined).Length);
        if (consumedAt >= prefixLength)
        {
            _prefix = ReadOnlyMemory<byte>.Empty;
            inner.AdvanceTo(_innerBuffer.GetPosition(consumedAt - prefixLength), _innerBuffer.GetPosition(examinedAt - prefixLength));
        }
        else
        {
            _prefix = _prefix[(int)consumedAt..];
            inner.AdvanceTo(_innerBuffer.Start, _innerBuffer.GetPosition(Math.Max(0, examinedAt - prefixLength)));
        }

        _innerBuffer = default;
        _combined = default;
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    private ReadResult Combine(ReadResult result)
    {
        if (_prefix.IsEmpty)
        {
            return result;
        }

        var combined = new byte[_prefix.Length + result.Buffer.Length];
        _prefix.Span.CopyTo(combined);
        result.Buffer.CopyTo(combined.AsSpan(_prefix.Length));
        _innerBuffer = result.Buffer;
        _combined = new ReadOnlySequence<byte>(combined);
        _reading = true;
        return new ReadResult(_combined, result.IsCanceled, result.IsCompleted);
    }
}
