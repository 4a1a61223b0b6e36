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
        services.Configure<HostFilteringOptions>(filtering =>
        {
            // Bound to every interface on purpose (a shared instance): any name may reach it.
            filtering.AllowedHosts = IsWildcard(options.WebHost)
                ? ["*"]
                : ["localhost", "127.0.0.1", "[::1]", options.WebHost.Contains(':', StringComparison.Ordinal) ? $"[{options.WebHost}]" : options.WebHost];
            filtering.IncludeFailureMessage = true;
        });

    public static WebApplication UseWebListenerGuard(this WebApplication app)
    {
        app.UseHostFiltering();
        app.Use(async (context, next) =>
        {
            if (IsCrossSite(context.Request))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsJsonAsync(
                    new { title = "Cross-site request refused", status = 403, detail = "The Origin of this request is not the WsWeb dashboard." },
                    context.RequestAborted);
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
