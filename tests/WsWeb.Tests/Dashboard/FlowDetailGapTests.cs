using System.Text.RegularExpressions;
using Microsoft.Playwright;
using WsWeb.Hubs;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// The dashboard on a host whose hub queues hold 50 events and whose hub clock the test moves
/// (<see cref="ManualHubClock"/>): a burst of messages overflows a page's queue, and the gap goes out, when the test says.
/// </summary>
public sealed class GapDashboardBrowser : IAsyncLifetime
{
    public static readonly FlowsHubOptions HubOptions = new() { QueueCapacity = 50, MaxBatchMessages = 500 };

    public GapDashboardBrowser() =>
        Browser = new DashboardBrowser(new WsWebApp(services =>
        {
            services.AddSingleton(HubOptions);
            services.AddSingleton(provider => ActivatorUtilities.CreateInstance<FlowsHubRouter>(provider, (TimeProvider)Clock));
        }));

    internal ManualHubClock Clock { get; } = new();

    public DashboardBrowser Browser { get; }

    public Task InitializeAsync() => Browser.InitializeAsync();

    public Task DisposeAsync() => Browser.DisposeAsync();
}

/// <summary>The flow detail page after a hub gap: the list ends complete and in order.</summary>
[Collection("dashboard-browser")]
public sealed class FlowDetailGapTests(GapDashboardBrowser fixture) : IClassFixture<GapDashboardBrowser>
{
    // Round trips through the echo peer: twice as many messages, far more than a page's 50 queued events.
    private const int RoundTrips = 6000;

    /// <summary>Keeps every text frame the page's hub connection receives; recorded in the same event dispatch as
    /// SignalR's own handler, so once a frame is here the page has handled it.</summary>
    private const string HubFrameLog = """
        (() => {
          window.__hubFrames = [];
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            constructor(...args) {
              super(...args);
              this.addEventListener("message", (e) => { if (typeof e.data === "string") window.__hubFrames.push(e.data); });
            }
          };
        })();
        """;

    private DashboardBrowser Browser => fixture.Browser;

    private WsWebApp App => Browser.App;

    private FlowsHubRouter Router => App.Services.GetRequiredService<FlowsHubRouter>();

    [RequiresChromiumFact]
    public async Task A_gap_is_filled_completely_and_in_order_while_live_messages_keep_coming()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var (page, gapCatchUp) = await OpenAndOverflowAsync(client, flow);

        // The gap's catch-up is held; meanwhile live delivery resumes after the hole: one more round trip, one tick.
        var route = await gapCatchUp;
        await client.SendTextAsync("tail");
        await client.ReceiveTextAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 2 * RoundTrips + 2, "the tail is recorded");
        await TickUntilAsync(() => page.EvaluateAsync<bool>(
            "n => window.__hubFrames.some(f => f.includes('\"MessagesAdded\"') && f.includes(`\"index\":${n}`))", 2 * RoundTrips + 1));

        // The hub's adds arrived while the catch-up had read nothing yet; now it reads on.
        await route.ContinueAsync();
        await ExpectCompleteAsync(page, 2 * RoundTrips + 2);
        await Expect(page.Locator($"#message-rows tr[data-index='{2 * RoundTrips + 1}'] .c-preview")).ToHaveTextAsync("tail");
    }

    [RequiresChromiumFact]
    public async Task A_gap_is_filled_after_a_failed_catch_up_with_no_traffic_afterwards()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var (page, gapCatchUp) = await OpenAndOverflowAsync(client, flow);

        // The gap's catch-up fails (WsWeb unreachable for that one request), and nothing is sent after it but the close.
        await (await gapCatchUp).AbortAsync();
        await client.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done");
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        await TickUntilAsync(() => page.EvaluateAsync<bool>("() => window.__hubFrames.some(f => f.includes('\"FlowClosed\"'))"));

        await ExpectCompleteAsync(page, 2 * RoundTrips);
        await Expect(page.Locator("#flow-state")).ToHaveTextAsync("closed 1000");
    }

    [RequiresChromiumFact]
    public Task Adds_lost_into_a_hole_the_page_has_caught_up_on_are_read_when_live_adds_resume() =>
        AddsLostIntoAnOpenHoleAsync(catchUpStillRunning: false);

    [RequiresChromiumFact]
    public Task Adds_lost_into_a_hole_are_read_when_live_adds_arrive_during_the_catch_ups_last_read() =>
        AddsLostIntoAnOpenHoleAsync(catchUpStillRunning: true);

    /// <summary>
    /// The hub's hole after a gap stays open until its next MessagesAdded for the flow, and adds discarded into it bring
    /// no new gap (docs/hub.md). Here the page's catch-up from the gap has already read to the end of the store when
    /// two more adds are discarded into the hole; live delivery then resumes past them. The page must notice the jump
    /// in the indices and read them, whether the live adds come after its catch-up ended or while its last read
    /// (answered by the server before the lost adds were recorded) is still on its way.
    /// </summary>
    private async Task AddsLostIntoAnOpenHoleAsync(bool catchUpStillRunning)
    {
        const int Burst = 100; // round trips: 200 messages for a queue of 50 events
        const int Capacity = 50;
        Assert.Equal(Capacity, GapDashboardBrowser.HubOptions.QueueCapacity);
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await Browser.NewPageAsync();
        await page.AddInitScriptAsync(HubFrameLog);

        // The catch-up's read at the end of the burst. The server answers it at once; with catchUpStillRunning the
        // answer reaches the page only when the test says (a slow network), later reads go through.
        const long Last = (2 * Burst) - 1;
        var readToEnd = new TaskCompletionSource<(IRoute Route, IAPIResponse Response)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync(new Regex($"/ui/flows/{flow.Id}/messages\\?after={Last}&"), async route =>
        {
            var response = await route.FetchAsync();
            if (!readToEnd.TrySetResult((route, response)) || !catchUpStillRunning)
            {
                await route.FulfillAsync(new() { Response = response });
            }
        });

        await page.RunAndWaitForResponseAsync(
            () => page.GotoAsync($"{Browser.BaseUrl}/flows/{flow.Id}"),
            response => response.Url.Contains($"/ui/flows/{flow.Id}/messages?after=-1", StringComparison.Ordinal));
        await Eventually.AssertAsync(() => Router.Feeds.Any(f => f.SubscribedFlows.Contains(flow.Id)), "the page subscribed to the flow");
        var feed = Router.Feeds.Single(f => f.SubscribedFlows.Contains(flow.Id));

        // The hub clock stands still: message 0 goes at once, 1-50 are queued and the rest discarded. Ticks send the
        // adds and the gap (cursor 51), and the page catches up from there to the end of the store. No add has
        // followed the gap, so the hub's hole stays open.
        for (var i = 0; i < Burst; i++)
        {
            await client.SendTextAsync($"m{i}");
            await client.ReceiveTextAsync();
        }

        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 2 * Burst, "the burst is recorded");
        Assert.True(feed.Dropped > 0, "the page's hub queue did not overflow");
        await TickUntilAsync(() => Task.FromResult(readToEnd.Task.IsCompleted && feed.Queued == 0 && !feed.HasWork));
        var gaps = feed.GapsSent;
        Assert.Equal(1L, gaps);

        // The queue full again, with changes only (edits, as an addon makes them): then a round trip's two adds are
        // discarded into the open hole, and the hub has nothing to say about them.
        fixture.Clock.Advance(GapDashboardBrowser.HubOptions.Tick);
        Edit(flow, 0, "prime");
        await Eventually.AssertAsync(() => feed.Queued == 0 && !feed.HasWork, "the leading edge was sent");
        for (var i = 1; i <= Capacity; i++)
        {
            Edit(flow, i, $"fill {i}");
        }

        Assert.Equal(Capacity, feed.Queued);
        var dropped = feed.Dropped;
        await client.SendTextAsync("lost");
        await client.ReceiveTextAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == (2 * Burst) + 2, "the lost round trip is recorded");
        Assert.Equal(dropped + 2, feed.Dropped);
        await TickUntilAsync(async () => feed.Queued == 0 && !feed.HasWork
            && await page.EvaluateAsync<bool>($"() => window.__hubFrames.some(f => f.includes('\"fill {Capacity}\"'))"));

        // Live delivery resumes after the hole: one more round trip, delivered as MessagesAdded.
        await client.SendTextAsync("tail");
        await client.ReceiveTextAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == (2 * Burst) + 4, "the tail is recorded");
        await TickUntilAsync(() => page.EvaluateAsync<bool>(
            "n => window.__hubFrames.some(f => f.includes('\"MessagesAdded\"') && f.includes(`\"index\":${n}`))", (2 * Burst) + 3));
        Assert.Equal(gaps, feed.GapsSent);

        if (catchUpStillRunning)
        {
            var (route, response) = await readToEnd.Task;
            await route.FulfillAsync(new() { Response = response });
        }

        // Every message, in order, the lost round trip included.
        const int Total = (2 * Burst) + 4;
        var rows = page.Locator("#message-rows tr.msg-row");
        await Expect(rows).ToHaveCountAsync(Total);
        var indices = await rows.EvaluateAllAsync<long[]>("rows => rows.map(r => +r.dataset.index)");
        Assert.Equal(Enumerable.Range(0, Total).Select(i => (long)i), indices);
        await Expect(page.Locator($"#message-rows tr[data-index='{2 * Burst}'] .c-preview")).ToHaveTextAsync("lost");
    }

    /// <summary>Changes a recorded message as an addon does: set its content and tell the store (which tells the hub).</summary>
    private void Edit(WsWeb.Core.Flows.HttpFlow flow, long index, string text)
    {
        var message = flow.WebSocket!.Find(index)!;
        message.Text = text;
        App.Store.MessageChanged(flow, message);
    }

    /// <summary>
    /// Opens the flow's page, sends <see cref="RoundTrips"/> round trips while the hub clock stands still (the page's
    /// queue overflows), then lets ticks pass until the page starts the gap's catch-up, which is held for the test.
    /// </summary>
    private async Task<(IPage Page, Task<IRoute> GapCatchUp)> OpenAndOverflowAsync(ClientPeer client, WsWeb.Core.Flows.HttpFlow flow)
    {
        var page = await Browser.NewPageAsync();
        await page.AddInitScriptAsync(HubFrameLog);

        // Every read after a cursor of 0 or more (the one after connecting reads after -1: the flow had no messages).
        var held = new TaskCompletionSource<IRoute>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync(new Regex($"/ui/flows/{flow.Id}/messages\\?after=\\d"), route =>
        {
            if (!held.TrySetResult(route))
            {
                return route.ContinueAsync();
            }

            return Task.CompletedTask;
        });

        await page.RunAndWaitForResponseAsync(
            () => page.GotoAsync($"{Browser.BaseUrl}/flows/{flow.Id}"),
            response => response.Url.Contains($"/ui/flows/{flow.Id}/messages?after=-1", StringComparison.Ordinal));
        await Eventually.AssertAsync(() => Router.Feeds.Any(f => f.SubscribedFlows.Contains(flow.Id)), "the page subscribed to the flow");

        // The hub clock stands still: after the first batch everything waits for a tick, and all but 50 are discarded.
        for (var i = 0; i < RoundTrips; i++)
        {
            await client.SendTextAsync($"m{i}");
        }

        for (var i = 0; i < RoundTrips; i++)
        {
            await client.ReceiveTextAsync();
        }

        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 2 * RoundTrips, "every message is recorded");
        var feed = Router.Feeds.Single(f => f.SubscribedFlows.Contains(flow.Id));
        Assert.True(feed.Dropped > 0, "the page's hub queue did not overflow");

        // Ticks send the queued adds and the gap; the page starts its catch-up from the gap's cursor, and the feed
        // has sent all it had (so what comes next is delivered live, not lost into the same hole).
        await TickUntilAsync(() => Task.FromResult(held.Task.IsCompleted && !feed.HasWork && feed.Queued == 0));
        return (page, held.Task);
    }

    /// <summary>Lets hub ticks pass (each one sends what a page's queue holds, and its gap) until the condition holds.</summary>
    private async Task TickUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the page never received what the hub was to send");
            fixture.Clock.Advance(GapDashboardBrowser.HubOptions.Tick);
            await Task.Delay(50);
        }
    }

    /// <summary>The list ends with the flow's last message and has no hole: every index from its first row on.</summary>
    private static async Task ExpectCompleteAsync(IPage page, int total)
    {
        var rows = page.Locator("#message-rows tr.msg-row");
        await Expect(rows.Last).ToHaveAttributeAsync("data-index", $"{total - 1}", new() { Timeout = 60_000 });
        var indices = await rows.EvaluateAllAsync<long[]>("rows => rows.map(r => +r.dataset.index)");
        var first = indices[0];
        var holes = indices.Select((index, i) => (index, expected: first + i)).Where(p => p.index != p.expected).Take(3).ToList();
        Assert.True(holes.Count == 0, $"the list has a hole: rows {first}–{indices[^1]}, first mismatches {string.Join(", ", holes.Select(h => $"{h.index} where {h.expected} belongs"))}");
        // A page further behind than it keeps rows for jumps to the newest page (older ones load on scroll-up): at
        // least that page is shown.
        Assert.True(indices.Length >= 200, $"only {indices.Length} rows are shown");
    }
}
