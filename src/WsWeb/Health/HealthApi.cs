using WsWeb.Core.Flows;
using WsWeb.Proxy;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Health;

internal static class HealthApi
{
    /// <param name="ClientTls">Client TLS handshakes with the proxy: a failed one makes no flow, so it is counted here (and listed on the onboarding page).</param>
    public sealed record HealthReport(string Status, int Flows, int LiveWebSockets, int ProxyPort, int WebPort, ClientTlsCounts ClientTls);

    public sealed record ClientTlsCounts(long Succeeded, long Failed);

    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        // The ports bound, which differ from the options' when those are 0 (a free port picked at start).
        app.MapGet("/healthz", (FlowStore store, LiveRelays live, ProxyOptions options, OwnEndpoints own, TlsHandshakeLog handshakes) =>
            TypedResults.Ok(new HealthReport("ok", store.Count, live.Count,
                own.Proxy.FirstOrDefault()?.Port ?? options.ListenPort, own.Web.FirstOrDefault()?.Port ?? options.WebPort,
                new ClientTlsCounts(handshakes.Succeeded, handshakes.Failed))))
            .WithName("Health")
            .WithSummary("Liveness: the host is up and the proxy engine is running.");
        return app;
    }
}
