using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>Open dashboard tabs while WsWeb is stopped and started again on the same port.</summary>
[Collection("dashboard-browser")]
public sealed class DashboardRestartTests
{
    [RequiresChromiumFact]
    public async Task The_flow_list_goes_back_to_live_after_a_restart_and_stops_polling()
    {
        var browser = new DashboardBrowser();
        await browser.InitializeAsync();
        try
        {
            var page = await browser.NewPageAsync();
            var status = page.Locator("#live-status");
            var polls = 0;
            page.Request += (_, request) =>
            {
                if (request.Url.Contains("/ui/flows/rows", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref polls);
                }
            };

            // The hub cannot be reached when the page loads (its negotiate request fails): the page polls, and
            // keeps trying the hub.
            await page.RouteAsync("**/hubs/flows/negotiate*", route => route.AbortAsync());
            await page.GotoAsync(browser.BaseUrl + "/");
            await Expect(status).ToHaveTextAsync("polling");
            await page.UnrouteAsync("**/hubs/flows/negotiate*");
            await Expect(status).ToHaveTextAsync("live");

            // WsWeb stops: the page says so. It comes back on the same port: the page reconnects by itself.
            await browser.StopAppAsync();
            await Expect(status).ToHaveTextAsync("offline");
            await browser.StartAppAsync();
            await Expect(status).ToHaveTextAsync("live");

            // Live through the hub again: a flow of the new process appears, and the page no longer polls.
            var (client, _, flow) = await browser.App.ConnectAsync();
            await using var c = client;
            await Expect(page.Locator($"tr.flow-row[data-id='{flow.Id}']")).ToBeVisibleAsync();
            var before = Volatile.Read(ref polls);
            await page.WaitForTimeoutAsync(3000); // three polling periods
            Assert.Equal(before, Volatile.Read(ref polls));
            await Expect(status).ToHaveTextAsync("live");
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task The_flow_page_says_offline_while_WsWeb_is_stopped_and_that_the_flow_is_gone_after_a_restart()
    {
        var browser = new DashboardBrowser();
        await browser.InitializeAsync();
        try
        {
            var (client, _, flow) = await browser.App.ConnectAsync();
            await using var c = client;
            await client.SendTextAsync("before the restart");
            await client.ReceiveTextAsync();

            var page = await browser.NewPageAsync();
            var status = page.Locator("#live-status");
            await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
            await Expect(status).ToHaveTextAsync("live");

            // Stopped: the page's catch-ups fail, and it says so rather than "polling".
            await browser.StopAppAsync();
            await Expect(status).ToHaveTextAsync("offline");
            await Expect(page.Locator("#flow-gone")).ToHaveCountAsync(0);

            // The new process has no such flow: the page says the flow is gone, keeps what it showed, and stops asking.
            var requests = 0;
            page.Request += (_, request) =>
            {
                if (request.Url.Contains($"/flows/{flow.Id}/", StringComparison.Ordinal) || request.Url.Contains("/hubs/flows", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref requests);
                }
            };
            await browser.StartAppAsync();
            await Expect(page.Locator("#flow-gone")).ToContainTextAsync("This flow no longer exists");
            await Expect(status).ToHaveTextAsync("not live");
            await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(2);
            await Expect(page.Locator("#close-form button[type=submit]")).ToBeDisabledAsync();
            var before = Volatile.Read(ref requests);
            await page.WaitForTimeoutAsync(3000); // three polling periods
            Assert.Equal(before, Volatile.Read(ref requests));
            await Expect(page.Locator("#flow-gone")).ToHaveCountAsync(1);
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task A_flow_page_backs_off_while_WsWeb_is_stopped_and_recovers_when_it_returns()
    {
        var browser = new DashboardBrowser();
        await browser.InitializeAsync();
        try
        {
            var (client, _, flow) = await browser.App.ConnectAsync();
            await using var c = client;
            var page = await browser.NewPageAsync();
            var status = page.Locator("#live-status");
            await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
            await Expect(status).ToHaveTextAsync("live");

            var requests = 0;
            page.Request += (_, request) =>
            {
                if (request.Url.StartsWith(browser.BaseUrl, StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref requests);
                }
            };

            // Stopped: one schedule of tries that backs off (1 s, 2 s, 5 s, …), not a 1 s poll beside retries of its
            // own (seen: two requests a second, then more with the hub's reconnects).
            await browser.StopAppAsync();
            await Expect(status).ToHaveTextAsync("offline");
            var before = Volatile.Read(ref requests);
            await page.WaitForTimeoutAsync(7000);
            var tries = Volatile.Read(ref requests) - before;
            Assert.InRange(tries, 1, 4);

            // Back: the next try finds it (the flow is gone in the new process) and the page stops asking.
            await browser.StartAppAsync();
            await Expect(page.Locator("#flow-gone")).ToContainTextAsync("This flow no longer exists");
            await Expect(status).ToHaveTextAsync("not live");
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }
}
