using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Text.Unicode;
using WsWeb.Core.Flows;

namespace WsWeb.Core.Filters;

/// <summary>
/// Runs regexes over flow parts without allocating strings: bytes are decoded, and header blocks and
/// URLs are composed, into stack or pooled buffers and matched as spans.
/// </summary>
internal static class TextMatching
{
    private const int StackChars = 256;

    public static bool IsMatch(FilterRegex regex, ReadOnlySpan<char> input, in FilterEvaluation evaluation)
    {
        try
        {
            return regex.Regex.IsMatch(input);
        }
        catch (RegexMatchTimeoutException e)
        {
            return evaluation.TimedOut(regex, e);
        }
    }

    public static bool IsMatch(FilterRegex regex, string? input, in FilterEvaluation evaluation) =>
        input is not null && IsMatch(regex, input.AsSpan(), evaluation);

    /// <summary>
    /// Matches content bytes. Valid UTF-8 is decoded as UTF-8 so text matches naturally; anything else is
    /// read as Latin-1, one char per byte, so patterns like <c>\x00\xff</c> find raw bytes in binary content
    /// (mitmproxy matches bytes with bytes regexes; this keeps that ability).
    /// </summary>
    public static bool IsMatchContent(FilterRegex regex, ReadOnlySpan<byte> content, in FilterEvaluation evaluation)
    {
        // Valid UTF-8 never decodes to more chars than it has bytes; Latin-1 is exactly one char per byte.
        var encoding = Utf8.IsValid(content) ? Encoding.UTF8 : Encoding.Latin1;
        char[]? rented = null;
        var buffer = content.Length <= StackChars
            ? stackalloc char[StackChars]
            : (rented = ArrayPool<char>.Shared.Rent(content.Length));
        try
        {
            var written = encoding.GetChars(content, buffer);
            return IsMatch(regex, buffer[..written], evaluation);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Matches a header block written as <c>name: value</c> lines, each ending in <c>\n</c> (mitmproxy uses
    /// <c>\r\n</c>, which makes <c>$</c> useless under multiline matching).
    /// </summary>
    public static bool IsMatchHeaders(FilterRegex regex, HeaderList headers, in FilterEvaluation evaluation)
    {
        // Index loops rather than foreach: an intercepted flow's headers may be edited meanwhile, and a
        // List enumerator would throw; a torn read only makes this one evaluation approximate.
        var length = 0;
        for (var i = 0; i < headers.Count; i++)
        {
            var (name, value) = headers[i];
            length += name.Length + value.Length + 3;
        }

        char[]? rented = null;
        var buffer = length <= StackChars
            ? stackalloc char[StackChars]
            : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            var written = 0;
            for (var i = 0; i < headers.Count; i++)
            {
                var (name, value) = headers[i];
                if (written + name.Length + value.Length + 3 > buffer.Length)
                {
                    break;
                }

                name.CopyTo(buffer[written..]);
                written += name.Length;
                buffer[written++] = ':';
                buffer[written++] = ' ';
                value.CopyTo(buffer[written..]);
                written += value.Length;
                buffer[written++] = '\n';
            }

            return IsMatch(regex, buffer[..written], evaluation);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Matches the value of every <c>Content-Type</c> field on its own, as mitmproxy's <c>~t</c>.</summary>
    public static bool IsMatchContentType(FilterRegex regex, HeaderList headers, in FilterEvaluation evaluation)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            var (name, value) = headers[i];
            if (string.Equals(name, "content-type", StringComparison.OrdinalIgnoreCase) && IsMatch(regex, value, evaluation))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Matches a "host:port" address as mitmproxy's <c>~src</c>/<c>~dst</c> see it: <c>f"{host}:{port}"</c>, so an
    /// IPv6 address has no brackets (<c>::1:5000</c>), although WsWeb stores it as <c>[::1]:5000</c>.
    /// </summary>
    public static bool IsMatchAddress(FilterRegex regex, string? address, in FilterEvaluation evaluation)
    {
        if (address is null || !address.StartsWith('[') || address.IndexOf("]:", StringComparison.Ordinal) is not (> 0 and var close))
        {
            return IsMatch(regex, address, evaluation);
        }

        Span<char> buffer = stackalloc char[address.Length];
        address.AsSpan(1, close - 1).CopyTo(buffer);
        address.AsSpan(close + 1).CopyTo(buffer[(close - 1)..]);
        return IsMatch(regex, buffer[..(address.Length - 2)], evaluation);
    }

    /// <summary>
    /// Matches mitmproxy's <c>pretty_url</c>, composed in a buffer instead of a new string: <see cref="HttpRequestData.Url"/>,
    /// except that a Host header names the host and port (its port, else the scheme's default), as the client asked.
    /// </summary>
    public static bool IsMatchUrl(FilterRegex regex, HttpRequestData request, in FilterEvaluation evaluation)
    {
        var scheme = request.Scheme;
        ReadOnlySpan<char> host = request.Host;
        var path = request.Path;
        var port = request.Port;
        if (request.Headers["Host"] is { } header && !string.IsNullOrWhiteSpace(header))
        {
            host = SplitAuthority(header.AsSpan().Trim(), out var headerPort);
            port = headerPort ?? (scheme == "http" ? 80 : 443);
        }

        // Must stay in step with HttpRequestData.Authority/Url; a test compares the two.
        var bracket = host.Contains(':') && !host.StartsWith('[');
        var showPort = !((scheme, port) is ("http", 80) or ("https", 443) || port == 0);
        Span<char> portChars = stackalloc char[11];
        var portLength = 0;
        if (showPort)
        {
            port.TryFormat(portChars, out portLength, default, CultureInfo.InvariantCulture);
        }

        var length = scheme.Length + 3 + host.Length + (bracket ? 2 : 0) + (showPort ? 1 + portLength : 0) + path.Length;
        char[]? rented = null;
        var buffer = length <= StackChars
            ? stackalloc char[StackChars]
            : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            var written = 0;
            Append(buffer, ref written, scheme);
            Append(buffer, ref written, "://");
            if (bracket)
            {
                buffer[written++] = '[';
            }

            Append(buffer, ref written, host);
            if (bracket)
            {
                buffer[written++] = ']';
            }

            if (showPort)
            {
                buffer[written++] = ':';
                Append(buffer, ref written, portChars[..portLength]);
            }

            Append(buffer, ref written, path);
            return IsMatch(regex, buffer[..written], evaluation);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Matches a host, and the request's Host header without its port (mitmproxy's pretty_host).</summary>
    public static bool IsMatchDomain(FilterRegex regex, HttpRequestData request, in FilterEvaluation evaluation)
    {
        if (IsMatch(regex, request.Host, evaluation))
        {
            return true;
        }

        // mitmproxy's parse_authority: brackets of an IPv6 literal go, and a port only when it is a valid one.
        var header = request.Headers["Host"];
        return !string.IsNullOrWhiteSpace(header) && IsMatch(regex, SplitAuthority(header.AsSpan().Trim(), out _), evaluation);
    }

    /// <summary>A Host header's host (brackets of an IPv6 literal removed) and its port, or null without a valid one.</summary>
    private static ReadOnlySpan<char> SplitAuthority(ReadOnlySpan<char> authority, out int? port)
    {
        port = null;
        var colon = authority.LastIndexOf(':');
        if (colon >= 0 && colon > authority.LastIndexOf(']') && (authority[0] == '[' || authority[..colon].IndexOf(':') < 0)
            && int.TryParse(authority[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed is > 0 and <= 65535)
        {
            port = parsed;
            authority = authority[..colon];
        }

        return authority is ['[', .. var inner, ']'] ? inner : authority;
    }

    private static void Append(Span<char> buffer, ref int written, ReadOnlySpan<char> text)
    {
        text.CopyTo(buffer[written..]);
        written += text.Length;
    }
}
