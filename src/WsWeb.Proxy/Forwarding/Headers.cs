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
                list.Add(name, value ?? "");
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
                list.Add(name, value);
            }
        }

        foreach (var (name, values) in response.Content.Headers.NonValidated)
        {
            foreach (var value in values)
            {
                list.Add(name, value);
            }
        }

        return list;
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

            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
                continue;
            }

            target.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }
    }

    /// <summary>Copies end-to-end response headers to Kestrel's response.</summary>
    public static void CopyResponse(HttpResponseMessage source, HttpResponse target, Func<string, bool>? skip = null)
    {
        var connectionTokens = ConnectionTokens(string.Join(',', source.Headers.Connection));
        Copy(source.Headers);
        Copy(source.Content.Headers);

        void Copy(HttpHeaders headers)
        {
            foreach (var (name, values) in headers.NonValidated)
            {
                if (HopByHop.Contains(name) || connectionTokens.Contains(name) || (skip?.Invoke(name) ?? false))
                {
                    continue;
                }

                target.Headers.Append(name, values.Count == 1 ? new StringValues(values.ToString()) : new StringValues([.. values]));
            }
        }
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
