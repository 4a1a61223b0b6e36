using WsWeb.Core.Flows;
using WsWeb.Proxy;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Health;

internal static class HealthApi
{
    public sealed record HealthReport(string Status, int Flows, int LiveWebSockets, int ProxyPort, int WebPort);

    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", (FlowStore store, LiveRelays live, ProxyOptions options) =>
            TypedResults.Ok(new HealthReport("ok", store.Count, live.Count, options.ListenPort, options.WebPort)))
            .WithName("Health")
            .WithSummary("Liveness: the host is up and the proxy engine is running.");
        return app;
    }
}
