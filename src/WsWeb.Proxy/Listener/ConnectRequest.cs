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

        if (!TryFindHeadEnd(buffer, out consumed))
        {
            if (buffer.Length > MaxHeadLength)
            {
                error = "CONNECT request head is larger than 16 KiB.";
                return ConnectParseStatus.Invalid;
            }

            // What arrived so far is "CONNECT " or a prefix of it: wait for the rest of the head.
            return ConnectParseStatus.Incomplete;
        }

        if (consumed > MaxHeadLength)
        {
            error = "CONNECT request head is larger than 16 KiB.";
            return ConnectParseStatus.Invalid;
        }

        var text = Encoding.Latin1.GetString(buffer.Slice(0, consumed));
        var requestLine = text[..text.IndexOf('\n', StringComparison.Ordinal)].TrimEnd('\r');
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

    /// <summary>
    /// Finds the blank line ending the head. Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a recipient
    /// accept it, as Kestrel does): what a person types into netcat ends in LF.
    /// </summary>
    /// <param name="consumed">Length of the head including the blank line.</param>
    private static bool TryFindHeadEnd(in ReadOnlySequence<byte> buffer, out long consumed)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryAdvanceTo((byte)'\n'))
        {
            if (reader.IsNext((byte)'\n', advancePast: true) || reader.IsNext("\r\n"u8, advancePast: true))
            {
                consumed = reader.Consumed;
                return true;
            }
        }

        consumed = 0;
        return false;
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

        // A name on the wire is ASCII (an IDN travels as punycode, xn--…); raw UTF-8 would fail later, inside TLS.
        return host.Length > 0 && System.Text.Ascii.IsValid(host) && Uri.CheckHostName(host) != UriHostNameType.Unknown;
    }
}
