using Microsoft.Extensions.Logging;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.Addons;

/// <summary>Runs the registered addons in registration order; one failing addon is logged, not fatal.</summary>
internal sealed partial class AddonPipeline(IEnumerable<IWebSocketAddon> addons, ILogger<AddonPipeline> logger)
{
    private readonly IWebSocketAddon[] _addons = [.. addons];

    public bool IsEmpty => _addons.Length == 0;

    public ValueTask WebSocketStartAsync(HttpFlow flow, CancellationToken cancellationToken) =>
        RunAsync(flow, nameof(IWebSocketAddon.WebSocketStartAsync), static (addon, f, _, ct) => addon.WebSocketStartAsync(f, ct), null, cancellationToken);

    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken) =>
        _addons.Length == 0
            ? ValueTask.CompletedTask
            : RunAsync(flow, nameof(IWebSocketAddon.WebSocketMessageAsync), static (addon, f, m, ct) => addon.WebSocketMessageAsync(f, m!, ct), message, cancellationToken);

    public ValueTask WebSocketEndAsync(HttpFlow flow, CancellationToken cancellationToken) =>
        RunAsync(flow, nameof(IWebSocketAddon.WebSocketEndAsync), static (addon, f, _, ct) => addon.WebSocketEndAsync(f, ct), null, cancellationToken);

    private async ValueTask RunAsync(
        HttpFlow flow,
        string hook,
        Func<IWebSocketAddon, HttpFlow, WebSocketMessage?, CancellationToken, ValueTask> invoke,
        WebSocketMessage? message,
        CancellationToken cancellationToken)
    {
        foreach (var addon in _addons)
        {
            try
            {
                await invoke(addon, flow, message, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogAddonFailed(addon.GetType().Name, hook, flow.Id, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Addon {Addon}.{Hook} failed on flow {FlowId}")]
    private partial void LogAddonFailed(string addon, string hook, string flowId, Exception exception);
}
