using System.Net.Http.Json;
using WsWeb.Hubs;
using WsWeb.Intercept;
using WsWeb.Tests.Dashboard;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>
/// A host whose hub queues hold 50 events and whose hub clock the test moves (<see cref="ManualHubClock"/>): after a
/// send, nothing more goes to a connection until the test lets a tick pass, so which events fit and which are
/// discarded is decided by the test, not by the machine's speed.
/// </summary>
public sealed class ManualClockHubApp : IAsyncLifetime
{
    public static readonly FlowsHubOptions HubOptions = new() { QueueCapacity = 50, MaxBatchMessages = 500 };

    public ManualClockHubApp() =>
        App = new WsWebApp(services =>
        {
            services.AddSingleton(HubOptions);
            services.AddSingleton(provider => ActivatorUtilities.CreateInstance<FlowsHubRouter>(provider, (TimeProvider)Clock));
        });

    internal ManualHubClock Clock { get; } = new();

    public WsWebApp App { get; }

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

/// <summary>
/// A change discarded while the client's hole is open still reaches it as a gap: its catch-up may have read that
/// message before the change (a held message, then released with an edit), and nothing else would make it read it again.
/// </summary>
public sealed class DiscardedChangeGapTests(ManualClockHubApp fixture) : IClassFixture<ManualClockHubApp>, IAsyncLifetime
{
    private const int Capacity = 50;
    private const int RoundTrips = 100;

    // The held message comes after the round trips' 2 * RoundTrips messages.
    private const long HeldIndex = 2 * RoundTrips;

    private readonly WsWebApp _app = fixture.App;

    private FlowsHubRouter Router => _app.Services.GetRequiredService<FlowsHubRouter>();

    public Task InitializeAsync() => _app.ResetAsync();

    public Task DisposeAsync() => _app.ResetAsync();

    [Fact]
    public async Task A_release_discarded_while_a_gap_is_open_is_followed_by_a_gap_at_or_below_the_released_message()
    {
        Assert.Equal(Capacity, ManualClockHubApp.HubOptions.QueueCapacity);
        var (client, _, flow) = await _app.ConnectAsync();
        await using var c = client;
        for (var i = 0; i < RoundTrips; i++)
        {
            await client.SendTextAsync($"m{i}");
            await client.ReceiveTextAsync();
        }

        // The last message is held by intercept: a client reading the flow now sees it as "held".
        await ApiAssert.JsonAsync(await _app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b hold" }));
        await client.SendTextAsync("hold me");
        var intercept = _app.Services.GetRequiredService<InterceptService>();
        await Eventually.AssertAsync(() => intercept.Find(flow.Id, HeldIndex) is not null, "the message is held");

        var before = Router.Feeds.ToHashSet();
        await using var hub = await HubTestClient.ConnectAsync(_app.WebPort);
        Assert.Equal(HeldIndex + 1, (await hub.InvokeAsync("SubscribeFlow", flow.Id))!.Value.GetInt64());
        var feed = Assert.Single(Router.Feeds, f => !before.Contains(f));

        // Open a gap: 100 edits (as an addon makes them) while the clock stands still; 50 fit, from index 150 on they
        // are discarded.
        await PrimeAsync(feed, flow);
        var dropped = feed.Dropped;
        for (var i = 100; i < 200; i++)
        {
            Edit(flow, i, $"first edit {i}");
        }

        Assert.Equal(dropped + 50, feed.Dropped);
        await TickUntilAsync(() => hub.Received.Any(i => i.Target == "Gap"), "the first gap reached the client");
        var firstGap = Assert.Single(hub.Received, i => i.Target == "Gap");
        Assert.Equal("flow", firstGap.String(0));
        Assert.Equal(flow.Id, firstGap.String(1));
        Assert.Equal(150, firstGap.Long(2));

        // The client's catch-up from the gap reads to the end of the store: the held message, as held.
        var caughtUp = await ApiAssert.JsonAsync(await _app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={HeldIndex - 1}&limit=1"));
        Assert.Equal("held", caughtUp.GetProperty("messages")[0].GetProperty("resolution").GetString());
        await TickUntilAsync(() => feed.Queued == 0 && !feed.HasWork, "the gap's batch was sent");

        // The client is over the bound again, with changes to messages below the open gap only (no MessagesAdded
        // closes it): then the held message is released with an edit, and that change is discarded.
        await PrimeAsync(feed, flow);
        dropped = feed.Dropped;
        for (var i = 0; i < Capacity; i++)
        {
            Edit(flow, i, $"fill {i}");
        }

        Assert.Equal(Capacity, feed.Queued);
        Assert.Equal(dropped, feed.Dropped);
        var released = await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{HeldIndex}/release", new { content = "released edit" }));
        Assert.Equal("edited", released.GetProperty("resolution").GetString());
        Assert.True(feed.Dropped > dropped, "the release's change was discarded");

        // The fill's MessagesChanged goes in the same send as any gap of its batch, after it: once it is here, so is the gap.
        await TickUntilAsync(
            () => hub.Received.Any(i => i.Target == "MessagesChanged" && i.Array(1).Any(m => m.GetProperty("content").GetString() == $"fill {Capacity - 1}")),
            "the fill's changes reached the client");
        var received = hub.Received.ToList();
        var after = received.Skip(received.IndexOf(firstGap) + 1).ToList();
        var gap = Assert.Single(after, i => i.Target == "Gap");
        Assert.Equal("flow", gap.String(0));
        Assert.Equal(flow.Id, gap.String(1));
        Assert.InRange(gap.Long(2), 0, HeldIndex);

        // Where that gap sends the client, REST has the release.
        var reread = await ApiAssert.JsonAsync(await _app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={gap.Long(2) - 1}&limit=500"));
        var message = reread.GetProperty("messages").EnumerateArray().Single(m => m.GetProperty("index").GetInt64() == HeldIndex);
        Assert.Equal("edited", message.GetProperty("resolution").GetString());
        Assert.Equal("released edit", message.GetProperty("content").GetString());
    }

    /// <summary>
    /// Puts the feed's sender where the test wants it: a tick has passed since its last send, so one change goes at
    /// once (the leading edge) and, the clock standing still from then on, everything after it waits in the queue.
    /// </summary>
    private async Task PrimeAsync(ClientFeed feed, Core.Flows.HttpFlow flow)
    {
        fixture.Clock.Advance(ManualClockHubApp.HubOptions.Tick);
        Edit(flow, 0, "prime");
        await Eventually.AssertAsync(() => feed.Queued == 0 && !feed.HasWork, "the leading edge was sent");
    }

    private void Edit(Core.Flows.HttpFlow flow, long index, string text)
    {
        var message = flow.WebSocket!.Find(index)!;
        message.Text = text;
        _app.Store.MessageChanged(flow, message);
    }

    /// <summary>Lets hub ticks pass (each sends what the queue holds) until the condition holds.</summary>
    private Task TickUntilAsync(Func<bool> condition, string what) =>
        Eventually.AssertAsync(
            () =>
            {
                if (condition())
                {
                    return true;
                }

                fixture.Clock.Advance(ManualClockHubApp.HubOptions.Tick);
                return false;
            },
            what);
}
