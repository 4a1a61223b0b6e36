using System.Buffers;
using System.Text;

namespace WsWeb.Proxy.Listener;

internal enum ConnectParseStatus
{
    NotConnect,
    Incomplete,
    Invalid,
    Connect,
}

/// <summary>Sans-IO parsing of a <c>CONNECT host:port HTTP/1.1</c> request head.</summary>
internal static class ConnectRequest
{
    public const int MaxHeadLength = 16 * 1024;
    private static ReadOnlySpan<byte> Prefix => "CONNECT "u8;
    private static ReadOnlySpan<byte> HeadEnd => "\r\n\r\n"u8;

    /// <param name="consumed">Length of the head including the blank line, when it is a CONNECT.</param>
    /// <param name="error">Why the head is invalid.</param>
    public static ConnectParseStatus TryParse(in ReadOnlySequence<byte> buffer, out string host, out int port, out long consumed, out string? error)
    {
        host = "";
        port = 0;
        consumed = 0;
        error = null;
        var prefixLength = (int)Math.Min(buffer.Length, Prefix.Length);
        Span<byte> start = stackalloc byte[Prefix.Length];
        buffer.Slice(0, prefixLength).CopyTo(start);
        if (!Prefix[..prefixLength].SequenceEqual(start[..prefixLength]))
        {
            return ConnectParseStatus.NotConnect;
        }

        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, HeadEnd, advancePastDelimiter: true))
        {
            if (buffer.Length > MaxHeadLength)
            {
                error = "CONNECT request head is larger than 16 KiB.";
                return ConnectParseStatus.Invalid;
            }

            // What arrived so far is "CONNECT " or a prefix of it: wait for the rest of the head.
            return ConnectParseStatus.Incomplete;
        }

        consumed = reader.Consumed;
        if (consumed > MaxHeadLength)
        {
            error = "CONNECT request head is larger than 16 KiB.";
            return ConnectParseStatus.Invalid;
        }

        var text = Encoding.Latin1.GetString(head);
        var lineEnd = text.IndexOf("\r\n", StringComparison.Ordinal);
        var requestLine = lineEnd < 0 ? text : text[..lineEnd];
        var parts = requestLine.Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            error = $"Malformed CONNECT request line: '{requestLine}'. Expected 'CONNECT host:port HTTP/1.1'.";
            return ConnectParseStatus.Invalid;
        }

        if (!TrySplitAuthority(parts[1], out host, out port))
        {
            error = $"CONNECT target '{parts[1]}' is not host:port with a port between 1 and 65535.";
            return ConnectParseStatus.Invalid;
        }

        return ConnectParseStatus.Connect;
    }

    /// <summary>Splits "host:port" or "[v6]:port".</summary>
    public static bool TrySplitAuthority(string authority, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = authority.LastIndexOf(':');
        if (colon <= 0 || colon == authority.Length - 1)
        {
            return false;
        }

        if (!int.TryParse(authority.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = authority[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            // Brackets hold IPv6 literals only (RFC 3986 §3.2.2).
            host = host[1..^1];
            return System.Net.IPAddress.TryParse(host, out var literal) && literal.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            return false;
        }

        return host.Length > 0 && Uri.CheckHostName(host) != UriHostNameType.Unknown;
    }
}
