using System.Diagnostics;
using System.Text.RegularExpressions;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>Ctrl+C with a dashboard tab open: the host stops at once, and the tab says it is no longer live.</summary>
[Collection("dashboard-browser")]
public sealed class DashboardShutdownTests
{
    [RequiresChromiumFact]
    public async Task Stopping_with_a_tab_open_is_quick_and_the_tab_stops_saying_live()
    {
        var browser = new DashboardBrowser();
        await browser.InitializeAsync();
        try
        {
            var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, error) => errors.Add(error);
            await page.GotoAsync(browser.BaseUrl + "/");
            await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");

            // The tab reconnects as soon as its connection drops; that connection used to hold the stop for 30 s.
            var clock = Stopwatch.StartNew();
            await browser.App.DisposeAsync();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"stopping took {clock.Elapsed}");

            await Expect(page.Locator("#live-status")).ToHaveTextAsync(new Regex("^(reconnecting|offline)$"));
            Assert.Empty(errors);
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }
}
