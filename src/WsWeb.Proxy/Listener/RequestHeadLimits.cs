using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// How large a request head each listener reads. Kestrel's limits (<c>KestrelServerOptions.Limits</c>) belong to the
/// whole server, not to a listener: the proxy listener's generous ones are set there (see ListenProxy), and the web
/// listener holds its requests to Kestrel's defaults here, as it did before.
/// </summary>
internal static class RequestHeadLimits
{
    /// <summary>
    /// A proxy forwards what clients and servers agree on, as mitmproxy does (it has no such limits): a 9 KB URL or a
    /// 40 KB Cookie is real traffic. Bounded still, like the response heads WsWeb reads from servers (256 KiB, see
    /// UpstreamConnector's MaxResponseHeadersLength), so one connection's head costs at most a few hundred KiB.
    /// </summary>
    public const int ProxyMaxRequestHeadersTotalSize = 256 * 1024;

    /// <inheritdoc cref="ProxyMaxRequestHeadersTotalSize"/>
    public const int ProxyMaxRequestLineSize = 64 * 1024;

    /// <summary>Many short fields within <see cref="ProxyMaxRequestHeadersTotalSize"/>; each costs Kestrel an entry.</summary>
    public const int ProxyMaxRequestHeaderCount = 1000;

    /// <summary>
    /// Room for the longest filter the API takes (4096 characters) in a query, percent-encoded at up to 9 bytes a
    /// character (36 KiB of three-byte UTF-8), with its path: Kestrel's default 8 KiB refused a 1,400-character filter of
    /// accented letters.
    /// Below <see cref="ProxyMaxRequestLineSize"/>, the server-wide limit, so a longer line gets this listener's problem
    /// document rather than Kestrel's bare 414.
    /// </summary>
    public const int WebMaxRequestLineSize = 56 * 1024;

    // Kestrel's defaults (KestrelServerLimits), which the dashboard and API need no more than.
    public const int WebMaxRequestHeadersTotalSize = 32 * 1024;
    public const int WebMaxRequestHeaderCount = 100;

    /// <summary>Answers a request on the web listener whose head is past Kestrel's default limits as Kestrel would (414 or 431); false when it is within them.</summary>
    public static bool RefuseOnWebListener(HttpContext context, out Task answered)
    {
        answered = Task.CompletedTask;
        var request = context.Request;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.Value ?? "";

        // As Kestrel counts: the request line with its CRLF, and each field line's name and value.
        var lineSize = request.Method.Length + 1 + target.Length + 1 + request.Protocol.Length + 2;
        if (lineSize > WebMaxRequestLineSize)
        {
            answered = RefuseAsync(context, StatusCodes.Status414UriTooLong, "URI too long", "url", $"The request line is longer than {WebMaxRequestLineSize} bytes.");
            return true;
        }

        long count = 0, size = 0;
        foreach (var (name, values) in request.Headers)
        {
            foreach (var value in values)
            {
                count++;
                size += name.Length + (value?.Length ?? 0);
            }
        }

        if (count > WebMaxRequestHeaderCount || size > WebMaxRequestHeadersTotalSize)
        {
            answered = RefuseAsync(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, "Request header fields too large", "headers",
                $"The request has more than {WebMaxRequestHeaderCount} header fields or more than {WebMaxRequestHeadersTotalSize} bytes of them.");
            return true;
        }

        return false;
    }

    /// <summary>A problem document, as every other refusal of the web listener, its errors naming what is too large.</summary>
    private static Task RefuseAsync(HttpContext context, int status, string title, string field, string text)
    {
        // Kestrel closes after such a refusal too.
        context.Response.Headers.Connection = "close";
        return TypedResults.Problem(statusCode: status, title: title, extensions: new Dictionary<string, object?>
        {
            ["errors"] = new Dictionary<string, string[]> { [field] = [text] },
        }).ExecuteAsync(context);
    }
}
