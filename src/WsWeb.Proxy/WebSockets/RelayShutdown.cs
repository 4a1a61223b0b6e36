using Microsoft.Extensions.Hosting;
using WsWeb.Core.Addons;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// On shutdown (Ctrl+C), refuses new WebSockets, closes every live one with 1001 on both sides, waits a few
/// seconds for the peers to answer, and then drops the connections of those that did not.
/// </summary>
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
        live.BeginShutdown();

        // A peer that stopped reading holds its leg's write lock, and the host allows 30 s to stop: both closes
        // go out at once, and whatever has not answered within the reply wait loses its connections instead.
        using var deadline = new CancellationTokenSource(ReplyWait, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        await Task.WhenAll(live.Snapshot().Select(relay => CloseQuietlyAsync(relay, wait.Token)));

        // Give relays a moment to see the replies so their flows record a clean close.
        while (live.Count > 0 && !wait.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), time, CancellationToken.None);
        }

        foreach (var relay in live.Snapshot())
        {
            try
            {
                relay.Kill();
            }
            catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
            {
                // It ended meanwhile.
            }
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
            // Already closed, or a peer did not take its close in the relay's close timeout and was dropped.
        }
        catch (OperationCanceledException)
        {
            // The reply wait is over: the close goes on without us, and whatever is still live is killed below.
        }
    }
}
