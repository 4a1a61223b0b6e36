using System.Net;
using Microsoft.AspNetCore.HostFiltering;
using WsWeb.Proxy;

namespace WsWeb.Security;

/// <summary>
/// Keeps other web sites out of the dashboard and API. The captured traffic is full of tokens, and the
/// API can inject and kill: a page the user visits must not reach it by DNS rebinding (a foreign Host
/// header) nor by cross-site requests (a foreign Origin on a write or on the hub's WebSocket).
/// </summary>
internal static class WebListenerGuard
{
    public static IServiceCollection AddWebListenerGuard(this IServiceCollection services, ProxyOptions options) =>
        services
            // ASP.NET's own host filter runs ahead of the whole pipeline, the proxy listener included, where
            // every Host header names some other site: it must let all through. The web listener's check is below.
            .Configure<HostFilteringOptions>(filtering => filtering.AllowedHosts = ["*"])
            .AddSingleton(new WebListenerHosts(IsWildcard(options.WebHost)
                ? null   // Bound to every interface on purpose (a shared instance): any name may reach it.
                : ["localhost", "127.0.0.1", "[::1]", options.WebHost.Contains(':', StringComparison.Ordinal) ? $"[{options.WebHost}]" : options.WebHost]));

    /// <summary>Kestrel's default for request bodies and responses: 240 bytes a second, after a 5 s grace.</summary>
    internal static readonly Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate WebMinDataRate = new(240, TimeSpan.FromSeconds(5));

    /// <summary>Runs after the proxy, which answers every request on its own listener: only the web listener gets here.</summary>
    public static WebApplication UseWebListenerGuard(this WebApplication app)
    {
        var hosts = app.Services.GetRequiredService<WebListenerHosts>().Allowed;
        app.Use(async (context, next) =>
        {
            // The proxy listener turns Kestrel's data-rate limits off (a relayed body or download goes at the peers'
            // pace), and Kestrel sets them for the whole server: the web listener takes its defaults back, or a client
            // that declares a body and never sends it would hold a connection of the web listener's limit for ever.
            if (context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinRequestBodyDataRateFeature>() is { } bodyRate)
            {
                bodyRate.MinDataRate = WebMinDataRate;
            }

            if (context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.IHttpMinResponseDataRateFeature>() is { } responseRate)
            {
                responseRate.MinDataRate = WebMinDataRate;
            }

            var host = context.Request.Host;
            if (hosts is not null && host.HasValue && !HostString.MatchesAny(host.Value, hosts))
            {
                await TypedResults.ValidationProblem(
                    new Dictionary<string, string[]> { ["Host"] = [$"'{host.Value}' is not a name of this WsWeb dashboard; use http://localhost or the address it listens on."] },
                    title: "Host not allowed").ExecuteAsync(context);
                return;
            }

            if (IsCrossSite(context.Request))
            {
                await TypedResults.Problem(
                    statusCode: StatusCodes.Status403Forbidden,
                    title: "Cross-site request refused",
                    detail: "The Origin of this request is not the WsWeb dashboard.").ExecuteAsync(context);
                return;
            }

            await next(context);
        });
        return app;
    }

    /// <summary>Writes (and every hub connection) must come from the dashboard's own origin when a browser says where it comes from.</summary>
    internal static bool IsCrossSite(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            return false;   // Not a browser-initiated cross-origin request: scripts and curl send no Origin.
        }

        var guarded = request.Path.StartsWithSegments("/hubs") || !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));
        if (!guarded)
        {
            return false;
        }

        return !Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            || !string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsWildcard(string host) =>
        IPAddress.TryParse(host, out var address) && (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any));
}

/// <summary>The Host names the web listener answers to; null for any (bound to every interface).</summary>
internal sealed record WebListenerHosts(Microsoft.Extensions.Primitives.StringSegment[]? Allowed);
