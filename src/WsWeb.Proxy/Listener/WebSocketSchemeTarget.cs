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
/// anything else with an empty 400, so <see cref="RequestHeadReader"/> rewrites the scheme before Kestrel sees it.
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
