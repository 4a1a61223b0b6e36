using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>
/// Holds the first peer message of one direction (optionally: the first whose text contains <paramref name="containing"/>)
/// until released, as intercept does.
/// </summary>
internal sealed class HoldFirstMessage(bool fromClient = true, string? containing = null) : IWebSocketAddon
{
    private int _held;

    public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        if (message.FromClient == fromClient && !message.Injected
            && (containing is null || message.Text.Contains(containing, StringComparison.Ordinal))
            && Interlocked.Exchange(ref _held, 1) == 0)
        {
            Holding.SetResult();
            await Release.Task.WaitAsync(cancellationToken);
        }
    }
}
