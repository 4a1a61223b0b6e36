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

    public async ValueTask WebSocketStartAsync(HttpFlow flow, CancellationToken cancellationToken)
    {
        foreach (var addon in _addons)
        {
            try
            {
                await addon.WebSocketStartAsync(flow, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogAddonFailed(addon.GetType().Name, nameof(IWebSocketAddon.WebSocketStartAsync), flow.Id, ex);
            }
        }
    }

    public ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken) =>
        _addons.Length == 0 ? ValueTask.CompletedTask : RunMessageHooksAsync(flow, message, cancellationToken);

    public async ValueTask WebSocketEndAsync(HttpFlow flow, CancellationToken cancellationToken)
    {
        foreach (var addon in _addons)
        {
            try
            {
                await addon.WebSocketEndAsync(flow, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogAddonFailed(addon.GetType().Name, nameof(IWebSocketAddon.WebSocketEndAsync), flow.Id, ex);
            }
        }
    }

    private async ValueTask RunMessageHooksAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        foreach (var addon in _addons)
        {
            try
            {
                await addon.WebSocketMessageAsync(flow, message, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogAddonFailed(addon.GetType().Name, nameof(IWebSocketAddon.WebSocketMessageAsync), flow.Id, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Addon {Addon}.{Hook} failed on flow {FlowId}")]
    private partial void LogAddonFailed(string addon, string hook, string flowId, Exception exception);
}
