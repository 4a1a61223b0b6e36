using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using WsWeb.Proxy;

namespace WsWeb.Api;

/// <summary>
/// Request body limit for endpoints that carry a whole message (inject, edit a held message). Kestrel's
/// default (30,000,000 bytes) is below a 64 MiB message in base64, which the JSON body needs about 4/3 of; routing
/// applies this metadata before the body is read, and anything larger is still refused with a 413 problem.
/// </summary>
internal sealed class MessageBodySizeLimit(IServiceProvider services) : IRequestSizeLimitMetadata
{
    /// <summary>Room for the JSON around the content: property names, other fields, whitespace.</summary>
    public const long EnvelopeSlack = 64 * 1024;

    // Read on first request, not while endpoints are mapped: the options are then complete.
    private readonly Lazy<long?> _limit = new(() => For(
        services.GetRequiredService<ProxyOptions>().MaxMessageSize,
        services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits.MaxRequestBodySize));

    public long? MaxRequestBodySize => _limit.Value;

    /// <summary>The limit for <paramref name="maxMessageSize"/>; never below the server's own (null: unlimited stays unlimited).</summary>
    internal static long? For(long maxMessageSize, long? serverLimit)
    {
        if (serverLimit is not { } server)
        {
            return null;
        }

        var base64 = (maxMessageSize + 2) / 3 * 4;
        return Math.Max(server, base64 + EnvelopeSlack);
    }
}
