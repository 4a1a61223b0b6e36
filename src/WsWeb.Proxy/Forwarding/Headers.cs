using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using WsWeb.Core.Flows;

namespace WsWeb.Proxy.Forwarding;

/// <summary>Header copying between Kestrel and <see cref="HttpRequestMessage"/>, minus hop-by-hop fields (RFC 9110 §7.6.1).</summary>
internal static class Headers
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    };

    public static HeaderList Record(IHeaderDictionary headers)
    {
        var list = new HeaderList();
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                list.Add(name, Text(value ?? ""));
            }
        }

        return list;
    }

    public static HeaderList Record(HttpResponseMessage response)
    {
        var list = new HeaderList();
        foreach (var (name, values) in response.Headers.NonValidated)
        {
            foreach (var value in values)
            {
                list.Add(name, Text(value));
            }
        }

        foreach (var (name, values) in response.Content.Headers.NonValidated)
        {
            foreach (var value in values)
            {
                list.Add(name, Text(value));
            }
        }

        return list;
    }

    /// <summary>
    /// A header value as people read it. Both sides carry header bytes as Latin-1 so they pass through
    /// unchanged; what they say is mostly UTF-8 (as mitmproxy reads headers), so record that when it is valid.
    /// </summary>
    internal static string Text(string wire)
    {
        if (System.Text.Ascii.IsValid(wire))
        {
            return wire;
        }

        var bytes = System.Text.Encoding.Latin1.GetBytes(wire);
        return System.Text.Unicode.Utf8.IsValid(bytes) ? System.Text.Encoding.UTF8.GetString(bytes) : wire;
    }

    /// <summary>The flow's record of an upstream response head (the body is recorded as it streams).</summary>
    public static HttpResponseData RecordResponse(HttpResponseMessage response, double timestampStart) => new()
    {
        StatusCode = (int)response.StatusCode,
        Reason = response.ReasonPhrase ?? "",
        HttpVersion = $"HTTP/{response.Version.Major}.{response.Version.Minor}",
        Headers = Record(response),
        TimestampStart = timestampStart,
    };

    /// <summary>
    /// Where Kestrel puts a request's Content-Length when Transfer-Encoding came with it: it frames the body by
    /// the Transfer-Encoding alone and moves the Content-Length out of the way under this name (dotnet/aspnetcore#43523).
    /// </summary>
    public const string KestrelMovedContentLength = "X-Content-Length";

    /// <summary>
    /// Whether the client sent both Content-Length and Transfer-Encoding. Kestrel shows that as Transfer-Encoding
    /// beside <see cref="KestrelMovedContentLength"/>, which a client may also send as a header of its own: the listener,
    /// which sees the head's bytes, says which it was (<paramref name="headHadContentLength"/>). When it could not
    /// follow the head (null), an X-Content-Length beside Transfer-Encoding is taken for a moved Content-Length.
    /// </summary>
    public static bool HasContentLengthBesideTransferEncoding(IHeaderDictionary headers, bool? headHadContentLength) =>
        headers.TransferEncoding.Count > 0 && headHadContentLength != false && headers.ContainsKey(KestrelMovedContentLength);

    /// <summary>
    /// What a Transfer-Encoding says about a message body, as mitmproxy 8.1.1's <c>expected_http_body_size</c> reads it:
    /// codings compared without case and without blanks around the commas, and only these combinations relayed.
    /// </summary>
    public static TransferCoding ReadTransferCoding(StringValues transferEncoding)
    {
        if (transferEncoding.Count == 0)
        {
            return TransferCoding.None;
        }

        // At most two codings matter: [gzip|deflate|compress] chunked, or one of those (or identity) alone.
        Span<Range> codings = stackalloc Range[3];
        ReadOnlySpan<char> first = default, second = default;
        var count = 0;
        foreach (var value in transferEncoding)
        {
            var text = (value ?? "").AsSpan();
            var parts = text.Split(codings, ',');
            for (var i = 0; i < parts; i++)
            {
                var coding = text[codings[i]].Trim(" \t");
                if (count == 0)
                {
                    first = coding;
                }
                else if (count == 1)
                {
                    second = coding;
                }

                count++;
            }
        }

        var chunkedLast = count is 1 or 2 && (count == 1 ? first : second).Equals("chunked", StringComparison.OrdinalIgnoreCase);
        return count switch
        {
            1 when chunkedLast => TransferCoding.Chunked,
            1 when IsContentCoding(first) || first.Equals("identity", StringComparison.OrdinalIgnoreCase) => TransferCoding.UntilClose,
            2 when chunkedLast && IsContentCoding(first) => TransferCoding.CodedThenChunked,
            _ => TransferCoding.Unsupported,
        };

        static bool IsContentCoding(ReadOnlySpan<char> coding) =>
            coding.Equals("gzip", StringComparison.OrdinalIgnoreCase) || coding.Equals("deflate", StringComparison.OrdinalIgnoreCase)
            || coding.Equals("compress", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The server's Transfer-Encoding values, as they came (none when it sent none).</summary>
    public static StringValues ResponseTransferEncoding(HttpResponseMessage response) =>
        response.Headers.NonValidated.TryGetValues(Microsoft.Net.Http.Headers.HeaderNames.TransferEncoding, out var values)
            ? (values.Count == 1 ? new StringValues(values.ToString()) : new StringValues([.. values]))
            : StringValues.Empty;

    /// <summary>The codings of a Transfer-Encoding as one value, as the peer listed them.</summary>
    public static string JoinCodings(StringValues transferEncoding) => string.Join(", ", (IEnumerable<string?>)transferEncoding);

    /// <summary>The <c>websocket</c> token of an Upgrade header as the client spelled it, or null without one.</summary>
    public static string? WebSocketUpgradeToken(StringValues upgrade)
    {
        foreach (var value in upgrade)
        {
            foreach (var token in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (string.Equals(token, "websocket", StringComparison.OrdinalIgnoreCase))
                {
                    return token;
                }
            }
        }

        return null;
    }

    /// <summary>Whether the request carries Content-* headers, which need an <see cref="HttpContent"/> to travel on.</summary>
    public static bool HasContentHeaders(IHeaderDictionary headers)
    {
        foreach (var name in headers.Keys)
        {
            if (IsContentHeader(name))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsContentHeader(string name) => name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase);

    /// <summary>Copies end-to-end request headers; Content-* go to <paramref name="content"/> when there is one.</summary>
    public static void CopyRequest(IHeaderDictionary source, HttpRequestMessage target, HttpContent? content, Func<string, bool>? skip = null)
    {
        var connectionTokens = ConnectionTokens(source.Connection);
        foreach (var (name, values) in source)
        {
            if (HopByHop.Contains(name) || connectionTokens.Contains(name) || (skip?.Invoke(name) ?? false))
            {
                continue;
            }

            if (string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase))
            {
                target.Headers.Host = values.ToString();
                continue;
            }

            if (IsContentHeader(name))
            {
                content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
                continue;
            }

            target.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }
    }

    /// <summary>Copies end-to-end response headers to Kestrel's response.</summary>
    /// <exception cref="UpstreamResponseException">A header Kestrel cannot send (an invalid value or Content-Length).</exception>
    public static void CopyResponse(HttpResponseMessage source, HttpResponse target, Func<string, bool>? skip = null)
    {
        var connectionTokens = ConnectionTokens(string.Join(',', source.Headers.Connection));

        // The body goes out as it came (chunked or not); a Content-Length next to chunked coding is void
        // and must not be forwarded (RFC 9112 §6.3), nor may a 1xx or 204 carry one (RFC 9110 §8.6).
        var dropContentLength = source.Headers.TransferEncodingChunked == true || (int)source.StatusCode is < 200 or 204;
        Copy(source.Headers);
        Copy(source.Content.Headers);

        void Copy(HttpHeaders headers)
        {
            foreach (var (name, values) in headers.NonValidated)
            {
                if (HopByHop.Contains(name) || connectionTokens.Contains(name) || (skip?.Invoke(name) ?? false)
                    || (dropContentLength && string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                if (string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase) && SameLength(values) is { } length)
                {
                    // RFC 9110 §8.6: a list of equal lengths ("2, 2", or the field twice) may be taken for one, as browsers
                    // and mitmproxy do; Kestrel sends one value only. Lengths that differ stay a 502 (below).
                    target.Headers.ContentLength = length;
                    continue;
                }

                try
                {
                    target.Headers.Append(name, values.Count == 1 ? new StringValues(values.ToString()) : new StringValues([.. values]));
                }
                catch (InvalidOperationException ex)
                {
                    throw new UpstreamResponseException($"the server's {(int)source.StatusCode} response cannot be forwarded: its header '{name}' cannot be sent: {ex.Message}", ex);
                }
            }
        }
    }

    /// <summary>The length all of a Content-Length's values (and the comma-separated members of each) name, or null when they are not all one number.</summary>
    private static long? SameLength(HeaderStringValues values)
    {
        long? length = null;
        foreach (var value in values)
        {
            foreach (var member in value.Split(',', StringSplitOptions.TrimEntries))
            {
                if (!long.TryParse(member, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed)
                    || (length is not null && length != parsed))
                {
                    return null;
                }

                length = parsed;
            }
        }

        return length;
    }

    private static HashSet<string> ConnectionTokens(StringValues connection)
    {
        var tokens = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in connection)
        {
            foreach (var token in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                tokens.Add(token);
            }
        }

        return tokens;
    }
}

/// <summary>How a message's body is framed beyond Content-Length, from its Transfer-Encoding (see <see cref="Headers.ReadTransferCoding"/>).</summary>
internal enum TransferCoding
{
    /// <summary>No Transfer-Encoding.</summary>
    None,

    /// <summary><c>chunked</c> alone: the framing is the proxy's own business on each side.</summary>
    Chunked,

    /// <summary><c>gzip</c>, <c>deflate</c> or <c>compress</c>, then <c>chunked</c>: relayed with its Transfer-Encoding as sent, re-chunked.</summary>
    CodedThenChunked,

    /// <summary>One coding without <c>chunked</c>: a response body that ends when the server closes (RFC 9112 §6.3); a request cannot have it.</summary>
    UntilClose,

    /// <summary>Any other list of codings, which mitmproxy refuses (an unknown coding, chunked twice, two codings before chunked).</summary>
    Unsupported,
}

/// <summary>The upstream answered with a head that HTTP does not allow a proxy to pass on.</summary>
internal sealed class UpstreamResponseException(string message, Exception? inner = null) : Exception(message, inner);
