using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The flow page's activity strip: when the messages went, drawn live, a slice's click showing its first message.</summary>
[Collection("dashboard-browser")]
public sealed class ActivityBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>, IAsyncLifetime
{
    private WsWebApp App => browser.App;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [RequiresChromiumFact]
    public async Task The_strip_draws_each_way_grows_with_live_traffic_and_a_click_shows_the_slices_first_message()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        foreach (var text in new[] { "one", "two", "three" })
        {
            await client.SendTextAsync(text);
            Assert.Equal(text, await client.ReceiveTextAsync());
        }

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        var strip = page.Locator("#activity");
        await Expect(strip.Locator(".activity-caption")).ToContainTextAsync("6 messages over");
        await Expect(strip.Locator("svg")).ToHaveAttributeAsync("aria-label", new System.Text.RegularExpressions.Regex("^6 messages over "));
        Assert.True(await strip.Locator("rect.out").CountAsync() >= 1, "a bar for the client's messages");
        Assert.True(await strip.Locator("rect.in").CountAsync() >= 1, "a bar for the server's messages");
        await DashboardBrowser.ScreenshotAsync(page, "flow-activity");

        // The first slice with messages holds the first message: its title says so, and a click shows it.
        var first = strip.Locator("rect.slice").First;
        await Expect(first.Locator("title")).ToContainTextAsync("Click to show message #0");
        await first.ClickAsync();
        await Expect(page.Locator("#message-view .message-content[data-index='0']")).ToBeVisibleAsync();

        // Live: more traffic, and the strip counts it without a reload.
        await client.SendTextAsync("four");
        Assert.Equal("four", await client.ReceiveTextAsync());
        await Expect(strip.Locator(".activity-caption")).ToContainTextAsync("8 messages over");

        // With a message filter, only what it matches is counted, and the caption says so.
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}?filter={Uri.EscapeDataString("~wq")}");
        await Expect(strip.Locator(".activity-caption")).ToContainTextAsync("4 messages matching the filter over");
        Assert.Equal(0, await strip.Locator("rect.in").CountAsync());
    }
}
