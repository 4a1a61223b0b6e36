using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The intercept page's Release all and Drop all, and what it says when intercept is turned off while messages are held.</summary>
[Collection("dashboard-browser")]
public sealed class InterceptBulkBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>, IAsyncLifetime
{
    private WsWebApp App => browser.App;

    // Each test counts the held messages: none may be left from another test of the class.
    public Task InitializeAsync() => App.ResetAndDropHeldAsync();

    public Task DisposeAsync() => App.ResetAndDropHeldAsync();

    /// <summary>Two flows with one held client message each ("hold a", "hold b").</summary>
    private Task<(ClientPeer Client, PeerConnection Server, string FlowId, long Index)[]> HoldTwoAsync() =>
        App.HoldOnePerFlowAsync("~wq", ["a", "b"], name => [$"hold {name}"]);

    private async Task<IPage> OpenInterceptAsync(int cards)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/intercept");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        await Expect(page.Locator(".held-card")).ToHaveCountAsync(cards);
        return page;
    }

    private async Task<string?> ResolutionAsync(string flowId, long index) =>
        (await ApiAssert.JsonAsync(await App.Api.GetAsync($"/api/flows/{flowId}/messages?after={index - 1}&limit=1")))
            .GetProperty("messages")[0].GetProperty("resolution").GetString();

    [RequiresChromiumFact]
    public async Task Release_all_forwards_every_held_message_and_the_buttons_follow_what_is_held()
    {
        var page = await OpenInterceptAsync(cards: 0);
        await Expect(page.Locator("#held-release-all")).ToBeDisabledAsync();
        await Expect(page.Locator("#held-drop-all")).ToBeDisabledAsync();

        var flows = await HoldTwoAsync();
        try
        {
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(2);
            await Expect(page.Locator("#held-release-all")).ToBeEnabledAsync();
            await Expect(page.Locator("#held-drop-all")).ToBeEnabledAsync();

            await page.Locator("#held-release-all").ClickAsync();
            await Expect(page.Locator("#held-bulk-result")).ToHaveTextAsync("Released 2 messages");
            foreach (var (client, server, flowId, index) in flows)
            {
                var text = flowId == flows[0].FlowId ? "hold a" : "hold b";
                Assert.Equal(text, await client.ReceiveTextAsync());
                Assert.Equal([text], server.Texts.ToList());
                Assert.Equal("released", await ResolutionAsync(flowId, index));
            }

            // Decided here: the cards go (no tombstones), and there is nothing left to release.
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
            await Expect(page.Locator("#held-empty")).ToBeVisibleAsync();
            await Expect(page.Locator("#held-count")).ToHaveTextAsync("0");
            await Expect(page.Locator("#held-release-all")).ToBeDisabledAsync();
            await Expect(page.Locator("#held-drop-all")).ToBeDisabledAsync();
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Drop_all_asks_first_then_drops_every_held_message()
    {
        var flows = await HoldTwoAsync();
        try
        {
            var page = await OpenInterceptAsync(cards: 2);
            var accept = false;
            var asked = new List<string>();
            page.Dialog += async (_, dialog) =>
            {
                asked.Add(dialog.Message);
                if (accept) await dialog.AcceptAsync();
                else await dialog.DismissAsync();
            };

            // Cancelled: nothing is dropped.
            await page.Locator("#held-drop-all").ClickAsync();
            await Eventually.AssertAsync(() => asked.Count == 1, "the page asked");
            Assert.Contains("Drop all 2 held messages?", asked[0], StringComparison.Ordinal);
            await Task.Delay(300);
            Assert.Equal(2, App.Services.GetRequiredService<WsWeb.Intercept.InterceptService>().HeldCount);
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(2);

            accept = true;
            await page.Locator("#held-drop-all").ClickAsync();
            await Expect(page.Locator("#held-bulk-result")).ToHaveTextAsync("Dropped 2 messages");
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
            foreach (var (client, server, flowId, index) in flows)
            {
                Assert.Equal("dropped", await ResolutionAsync(flowId, index));
                Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(100)));
                Assert.Empty(server.Received);
            }
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Turning_intercept_off_with_messages_held_says_they_are_still_held()
    {
        var flows = await HoldTwoAsync();
        try
        {
            var page = await OpenInterceptAsync(cards: 2);
            var notice = page.Locator("#held-off-notice");
            await Expect(notice).ToBeHiddenAsync();

            await page.Locator("#intercept-form button[data-method=DELETE]").ClickAsync();
            await Expect(page.Locator("#intercept-state")).ToHaveTextAsync("off");
            await Expect(notice).ToBeVisibleAsync();
            await Expect(notice).ToHaveTextAsync("Intercept is off; 2 messages are still held — release or drop them.");
            Assert.Equal(2, App.Services.GetRequiredService<WsWeb.Intercept.InterceptService>().HeldCount);

            // A page opened now says so too, from the server's render.
            var other = await OpenInterceptAsync(cards: 2);
            await Expect(other.Locator("#held-off-notice")).ToHaveTextAsync("Intercept is off; 2 messages are still held — release or drop them.");

            // One released elsewhere: the count follows; none left: the notice goes.
            await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/intercept/held/{flows[0].FlowId}/{flows[0].Index}/release", UriKind.Relative), null));
            await Expect(notice).ToHaveTextAsync("Intercept is off; 1 message is still held — release or drop them.");
            await other.Locator("#held-release-all").ClickAsync();
            await Expect(other.Locator("#held-bulk-result")).ToHaveTextAsync("Released 1 message");
            await Expect(notice).ToBeHiddenAsync();
            await Expect(other.Locator("#held-off-notice")).ToBeHiddenAsync();
            Assert.Equal("hold b", await flows[1].Client.ReceiveTextAsync());
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }
}
