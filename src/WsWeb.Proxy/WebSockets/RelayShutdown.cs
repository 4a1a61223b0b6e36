using Microsoft.Extensions.Hosting;
using WsWeb.Core.Addons;

namespace WsWeb.Proxy.WebSockets;

/// <summary>On shutdown (Ctrl+C), closes every live WebSocket with 1001 on both sides and waits for the peers to answer.</summary>
internal sealed class RelayShutdown(LiveRelays live) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var closing = live.Snapshot()
            .Select(relay => CloseQuietlyAsync(relay, cancellationToken))
            .ToArray();
        await Task.WhenAll(closing);

        // Give relays a moment to see the replies so their flows record a clean close.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (live.Count > 0 && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
        }
    }

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
