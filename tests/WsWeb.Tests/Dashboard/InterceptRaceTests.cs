using System.Net;
using System.Net.Http.Json;
using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// The intercept page while someone else (another page, a script) decides on the messages it shows: what the user
/// typed stays, they are told what happened, and no card moves under the pointer.
/// </summary>
[Collection("dashboard-browser")]
public sealed class InterceptRaceTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>, IAsyncLifetime
{
    // The 409 a losing decision gets: the message is not held any more, or was decided while this one was checked.
    private static readonly System.Text.RegularExpressions.Regex DroppedConflict = new(@"Message \d+ of flow .* (is not held \(it was dropped\)|was decided meanwhile \(dropped\))");

    private WsWebApp App => browser.App;

    // Each test counts the held messages: none may be left from another test of the class.
    public Task InitializeAsync() => App.ResetAndDropHeldAsync();

    public Task DisposeAsync() => App.ResetAndDropHeldAsync();

    private async Task HoldClientMessagesAsync()
    {
        var state = await App.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq" });
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
    }

    private async Task<IPage> OpenInterceptAsync(int cards)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/intercept");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        await Expect(page.Locator(".held-card")).ToHaveCountAsync(cards);
        return page;
    }

    [RequiresChromiumFact]
    public async Task A_card_released_elsewhere_stays_in_place_as_a_tombstone_with_the_typed_text_until_dismissed()
    {
        await HoldClientMessagesAsync();
        var (client1, server1, flow1) = await App.ConnectAsync();
        await using var c1 = client1;
        var (client2, _, flow2) = await App.ConnectAsync();
        await using var c2 = client2;
        await client1.SendTextAsync("first");
        var index1 = await App.HeldIndexAsync(flow1.Id);
        await client2.SendTextAsync("second");
        await App.HeldIndexAsync(flow2.Id);

        var page = await OpenInterceptAsync(cards: 2);
        var first = page.Locator($".held-card[data-key='{flow1.Id}/{index1}']");
        var second = page.Locator($".held-card[data-key^='{flow2.Id}/']");
        await first.Locator("textarea").FillAsync("my edit in progress");
        var secondTop = (await second.BoundingBoxAsync())!.Y;

        // A teammate's script releases it unchanged.
        await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/intercept/held/{flow1.Id}/{index1}/release", UriKind.Relative), null));
        await Eventually.AssertAsync(() => server1.Texts.Contains("first"), "the server got the message as it was");

        await Expect(page.Locator("#held-count")).ToHaveTextAsync("1");
        await Expect(first).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("held-gone"));
        await Expect(first.Locator(".held-gone-note")).ToHaveTextAsync("Released elsewhere — your edit was not sent.");
        await Expect(first.Locator("textarea")).ToHaveValueAsync("my edit in progress");
        await Expect(first.Locator("textarea")).ToHaveJSPropertyAsync("readOnly", true);
        await Expect(first.Locator("button[type=submit]")).ToBeDisabledAsync();
        await Expect(first.Locator("button[data-api$='/drop']")).ToBeDisabledAsync();
        Assert.Equal(secondTop, (await second.BoundingBoxAsync())!.Y);

        // A message held later goes below: nothing already shown moves.
        var (client3, _, flow3) = await App.ConnectAsync();
        await using var c3 = client3;
        await client3.SendTextAsync("third");
        await Expect(page.Locator(".held-card")).ToHaveCountAsync(3);
        await Expect(page.Locator(".held-card").Last).ToHaveAttributeAsync("data-key", new System.Text.RegularExpressions.Regex($"^{flow3.Id}/"));
        await Expect(page.Locator("#held-count")).ToHaveTextAsync("2");
        Assert.Equal(secondTop, (await second.BoundingBoxAsync())!.Y);
        await DashboardBrowser.ScreenshotAsync(page, "intercept-tombstone");

        await first.Locator(".held-dismiss").ClickAsync();
        await Expect(page.Locator(".held-card")).ToHaveCountAsync(2);
        await Expect(page.Locator(".held-gone")).ToHaveCountAsync(0);
        await Expect(page.Locator("#held-count")).ToHaveTextAsync("2");
    }

    [RequiresChromiumFact]
    public async Task A_release_that_loses_to_a_drop_elsewhere_keeps_its_409_and_the_edit_after_the_list_changes()
    {
        await HoldClientMessagesAsync();
        var (client1, server1, flow1) = await App.ConnectAsync();
        await using var c1 = client1;
        await client1.SendTextAsync("contested");
        var index1 = await App.HeldIndexAsync(flow1.Id);
        var page = await OpenInterceptAsync(cards: 1);
        var card = page.Locator($".held-card[data-key='{flow1.Id}/{index1}']");

        // The page's release reaches WsWeb only after a script has dropped the message: the script wins the race.
        await page.RouteAsync("**/api/intercept/held/*/*/release", async route =>
        {
            await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/intercept/held/{flow1.Id}/{index1}/drop", UriKind.Relative), null));
            await route.ContinueAsync();
        });
        await card.Locator("textarea").FillAsync("my edit");
        await card.Locator("button[type=submit]").ClickAsync();

        await Expect(card.Locator(".problem")).ToContainTextAsync(DroppedConflict);
        await Expect(card.Locator(".held-gone-note")).ToHaveTextAsync("Dropped elsewhere — your edit was not sent.");
        await Expect(page.Locator("#held-count")).ToHaveTextAsync("0");

        // Another message held (another HeldChanged and re-read): the answer and the edit are still there.
        var (client2, _, flow2) = await App.ConnectAsync();
        await using var c2 = client2;
        await client2.SendTextAsync("next");
        await Expect(page.Locator(".held-card")).ToHaveCountAsync(2);
        await Expect(page.Locator("#held-count")).ToHaveTextAsync("1");
        await Expect(card.Locator(".problem")).ToContainTextAsync(DroppedConflict);
        await Expect(card.Locator("textarea")).ToHaveValueAsync("my edit");
        Assert.Empty(server1.Received);
    }
}
