using WsWeb.Hubs;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>
/// A hub client that stops reading for longer than <see cref="FlowsHubOptions.StalledSendTimeout"/> (1 s here) is
/// closed, and its queue freed with it, instead of holding its full queue for as long as its TCP connection lives.
/// Real host, a raw hub client with a small receive buffer, real WebSocket traffic through the proxy.
/// </summary>
public sealed class StalledHubClientTests : IAsyncLifetime
{
    private readonly WsWebApp _app = new(services => services.AddSingleton(new FlowsHubOptions { StalledSendTimeout = TimeSpan.FromSeconds(1) }));

    public Task InitializeAsync() => _app.InitializeAsync();

    public Task DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task A_client_that_stops_reading_is_closed_and_its_feed_goes()
    {
        var router = _app.Services.GetRequiredService<FlowsHubRouter>();
        var (client, _, flow) = await _app.ConnectAsync();
        await using var c = client;
        await using var stuck = await HubTestClient.ConnectAsync(_app.WebPort, receiveBufferSize: 4096);
        await stuck.InvokeAsync("SubscribeFlow", flow.Id);
        var feed = Assert.Single(router.Feeds);
        stuck.PauseReading();

        // More than the socket buffers on both sides hold, so a send to the stuck client has to wait for it.
        var payload = new string('s', 4096);
        for (var i = 0; i < 2000 && router.Feeds.Contains(feed); i++)
        {
            await client.SendTextAsync(payload);
            await client.ReceiveTextAsync();
        }

        await Eventually.AssertAsync(() => !router.Feeds.Contains(feed), "the stalled connection was closed", TimeSpan.FromSeconds(20));

        // The proxy never noticed: the WebSocket still relays.
        await client.SendTextAsync("still relayed");
        Assert.Equal("still relayed", await client.ReceiveTextAsync());
    }
}
