using Microsoft.Extensions.DependencyInjection.Extensions;

namespace WsWeb.Hubs;

public static class FlowsHubExtensions
{
    public const string Path = "/hubs/flows";

    /// <summary>Registers SignalR (JSON protocol, camelCase payloads) and the flows hub's router.</summary>
    /// <param name="options">Batching and queue bounds; ignored if a <see cref="FlowsHubOptions"/> is already registered (a later registration replaces it).</param>
    public static IServiceCollection AddFlowsHub(this IServiceCollection services, FlowsHubOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSignalR();
        services.AddFlowsHubConnectionHandler();
        services.TryAddSingleton(options ?? new FlowsHubOptions());
        services.TryAddSingleton<FlowsHubRouter>();
        return services;
    }

    /// <summary>Maps the hub at <see cref="Path"/>. Only the web listener reaches it: the proxy middleware runs first and answers every proxy-listener request itself.</summary>
    public static HubEndpointConventionBuilder MapFlowsHub(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapHub<FlowsHub>(Path);
}
