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
}
