using Microsoft.Extensions.Hosting;
using WsWeb.Core.Addons;

namespace WsWeb.Proxy.WebSockets;

/// <summary>On shutdown (Ctrl+C), closes every live WebSocket with 1001 on both sides and waits for the peers to answer.</summary>
/// <remarks>
/// This runs in <see cref="IHostedLifecycleService.StoppingAsync"/>, which the host calls before any
/// hosted service stops: Kestrel's own stop would otherwise abort the upgraded connections first.
/// </remarks>
internal sealed class RelayShutdown(LiveRelays live, TimeProvider time) : IHostedLifecycleService
{
    private static readonly TimeSpan ReplyWait = TimeSpan.FromSeconds(5);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(live.Snapshot().Select(relay => CloseQuietlyAsync(relay, cancellationToken)));

        // Give relays a moment to see the replies so their flows record a clean close.
        var deadline = time.GetUtcNow() + ReplyWait;
        while (live.Count > 0 && time.GetUtcNow() < deadline && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), time, CancellationToken.None);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static async Task CloseQuietlyAsync(WebSocketRelay relay, CancellationToken cancellationToken)
    {
        try
        {
            await relay.CloseAsync(CloseTarget.Both, WebSocketCloseCodes.GoingAway, "WsWeb is shutting down", cancellationToken);
        }
        catch (InvalidOperationException)
        {
            // Already closed.
        }
    }
}
