using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// Two people on one instance, each with a page open (review: a stale rules page's toggle reverted a teammate's edit,
/// and a stale intercept form reverted a teammate's filter). Two Chromium pages against the real host.
/// </summary>
[Collection("dashboard-browser")]
public sealed class SharedSettingsBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>
{
    private WsWebApp App => browser.App;

    private async Task<IPage> OpenLiveAsync(string path)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + path);
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        return page;
    }

    /// <summary>A page as a user opens it: they act on what they see, whether or not it is live yet.</summary>
    private async Task<IPage> OpenAsync(string path)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + path);
        return page;
    }

    private async Task<JsonElement> RuleAsync(string id) => await ApiAssert.JsonAsync(await App.Api.GetAsync($"/api/rules/{id}"));

    [RequiresChromiumFact]
    public async Task A_rule_created_elsewhere_appears_and_its_hits_count_on_an_open_rules_page()
    {
        await App.ResetAsync();
        var page = await OpenLiveAsync("/rules");
        await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(0);

        var created = await ApiAssert.JsonAsync(await App.Api.PostJsonAsync("/api/rules", new { name = "from a script", filter = "~wq & ~b tick", action = "replace", replace = new { pattern = "tick", replacement = "tock" } }), HttpStatusCode.Created);
        var row = page.Locator($"tr.rule-row[data-id='{created.GetProperty("id").GetString()}']");
        await Expect(row).ToContainTextAsync("from a script");
        await Expect(row).ToContainTextAsync("tick → tock");

        var (client, _, _) = await App.ConnectAsync();
        await using var c = client;
        for (var i = 0; i < 5; i++)
        {
            await client.SendTextAsync("tick");
            Assert.Equal("tock", await client.ReceiveTextAsync());
        }

        await Expect(row.Locator(".c-hits")).ToHaveTextAsync("5");

        // Deleted elsewhere: gone here too.
        await App.Api.DeleteAsync(new Uri($"/api/rules/{created.GetProperty("id").GetString()}", UriKind.Relative));
        await Expect(row).ToHaveCountAsync(0);
        await Expect(page.Locator(".rules-table .empty-state")).ToBeVisibleAsync();
    }

    [RequiresChromiumFact]
    public async Task A_stale_toggle_or_edit_on_another_page_does_not_revert_a_saved_change()
    {
        await App.ResetAsync();
        var created = await ApiAssert.JsonAsync(await App.Api.PostJsonAsync("/api/rules", new { name = "r1", filter = "~wq", action = "delay", delayMs = 5 }), HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString()!;
        var a = await OpenAsync("/rules");
        var b = await OpenAsync("/rules");

        // B starts editing the name before A saves a new filter.
        await b.ClickAsync($"tr.rule-row[data-id='{id}'] .rule-edit");
        await b.FillAsync("#rule-form input[name=name]", "renamed by B");

        await a.ClickAsync($"tr.rule-row[data-id='{id}'] .rule-edit");
        await a.FillAsync("#rule-filter", "~wq & ~b important");
        await a.ClickAsync("#rule-submit");
        await Expect(a.Locator($"tr.rule-row[data-id='{id}'] .c-filter")).ToHaveTextAsync("~wq & ~b important");

        // B switches the rule off: only that changes (the review's repro: this put back the filter B's page was loaded with).
        await b.ClickAsync($"tr.rule-row[data-id='{id}'] .rule-toggle");
        await Expect(b.Locator($"tr.rule-row[data-id='{id}'] .rule-toggle")).ToHaveTextAsync("off");
        var rule = await RuleAsync(id);
        Assert.False(rule.GetProperty("enabled").GetBoolean());
        Assert.Equal("~wq & ~b important", rule.GetProperty("filter").GetString());
        await Expect(a.Locator($"tr.rule-row[data-id='{id}'] .rule-toggle")).ToHaveTextAsync("off");

        // B's table follows; B's form keeps what B typed and says the rule changed.
        await Expect(b.Locator($"tr.rule-row[data-id='{id}'] .c-filter")).ToHaveTextAsync("~wq & ~b important");
        await Expect(b.Locator("#rule-notice")).ToContainTextAsync("Changed by someone else");
        await Expect(b.Locator("#rule-form input[name=name]")).ToHaveValueAsync("renamed by B");

        // B saves anyway (without choosing): refused, and A's filter stays.
        await b.ClickAsync("#rule-submit");
        await Expect(b.Locator("#rule-form .problem")).ToContainTextAsync("If-Match");
        Assert.Equal("~wq & ~b important", (await RuleAsync(id)).GetProperty("filter").GetString());

        // B loads the current definition and saves the rename on top of it: both changes stay.
        await b.Locator("#rule-notice .changed-load").ClickAsync();
        await Expect(b.Locator("#rule-filter")).ToHaveValueAsync("~wq & ~b important");
        await b.FillAsync("#rule-form input[name=name]", "renamed by B");
        await b.ClickAsync("#rule-submit");
        await Expect(a.Locator($"tr.rule-row[data-id='{id}'] .c-name")).ToHaveTextAsync("renamed by B");
        rule = await RuleAsync(id);
        Assert.Equal("~wq & ~b important", rule.GetProperty("filter").GetString());
        Assert.False(rule.GetProperty("enabled").GetBoolean());
        await DashboardBrowser.ScreenshotAsync(b, "rules-two-pages");
    }

    [RequiresChromiumFact]
    public async Task An_intercept_filter_set_on_one_page_shows_on_another_and_a_stale_submit_does_not_revert_it()
    {
        await App.ResetAsync();
        var a = await OpenLiveAsync("/intercept");
        var b = await OpenLiveAsync("/intercept");

        await a.FillAsync("#intercept-filter", "~wq & ~b secret");
        await a.ClickAsync("#intercept-form button[type=submit]");
        await Expect(a.Locator("#intercept-state")).ToContainTextAsync("holding ~wq & ~b secret");

        // B was not editing: its badge and form follow.
        await Expect(b.Locator("#intercept-state")).ToContainTextAsync("holding ~wq & ~b secret");
        await Expect(b.Locator("#intercept-filter")).ToHaveValueAsync("~wq & ~b secret");

        // B starts changing the timeout; meanwhile A narrows the filter. B's input stays, with a notice.
        await b.FillAsync("input[name=timeoutSeconds]", "30");
        await a.FillAsync("#intercept-filter", "~wq & ~b top-secret");
        await a.ClickAsync("#intercept-form button[type=submit]");
        await Expect(b.Locator("#intercept-state")).ToContainTextAsync("holding ~wq & ~b top-secret");
        await Expect(b.Locator("#intercept-notice")).ToContainTextAsync("Changed by someone else");
        await Expect(b.Locator("input[name=timeoutSeconds]")).ToHaveValueAsync("30");
        await Expect(b.Locator("#intercept-filter")).ToHaveValueAsync("~wq & ~b secret");

        // B clicks Set with its stale filter: a 412, and A's filter stays.
        await b.ClickAsync("#intercept-form button[type=submit]");
        await Expect(b.Locator("#intercept-form .problem")).ToContainTextAsync("If-Match");
        var state = await ApiAssert.JsonAsync(await App.Api.GetAsync("/api/intercept"));
        Assert.Equal("~wq & ~b top-secret", state.GetProperty("filter").GetString());
        Assert.Equal(JsonValueKind.Null, state.GetProperty("timeoutSeconds").ValueKind);

        // B takes A's settings, adds the timeout, and sets: both changes stay.
        await b.Locator("#intercept-notice .changed-load").ClickAsync();
        await Expect(b.Locator("#intercept-filter")).ToHaveValueAsync("~wq & ~b top-secret");
        await b.FillAsync("input[name=timeoutSeconds]", "30");
        await b.ClickAsync("#intercept-form button[type=submit]");
        await Expect(a.Locator("#intercept-form input[name=timeoutSeconds]")).ToHaveValueAsync("30");
        state = await ApiAssert.JsonAsync(await App.Api.GetAsync("/api/intercept"));
        Assert.Equal("~wq & ~b top-secret", state.GetProperty("filter").GetString());
        Assert.Equal(30, state.GetProperty("timeoutSeconds").GetDouble());
        await DashboardBrowser.ScreenshotAsync(b, "intercept-two-pages");

        // Turned off by a script: every page's badge says so.
        await App.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative));
        await Expect(a.Locator("#intercept-state")).ToHaveTextAsync("off");
        await Expect(b.Locator("#intercept-state")).ToHaveTextAsync("off");
    }

    [RequiresChromiumFact]
    public async Task A_refused_set_stops_showing_its_412_once_newer_settings_arrive()
    {
        await App.ResetAsync();
        var page = await OpenLiveAsync("/intercept");
        async Task SetByScriptAsync(string filter) =>
            await ApiAssert.JsonAsync(await App.Api.PutAsJsonAsync("/api/intercept", new { filter }));

        // The user is editing when a script changes the filter, and sets anyway: a 412 under the notice.
        await page.FillAsync("#intercept-filter", "~wq & ~b mine");
        await page.FillAsync("input[name=timeoutSeconds]", "30");
        await SetByScriptAsync("~wq & ~b one");
        await Expect(page.Locator("#intercept-notice")).ToContainTextAsync("~wq & ~b one");
        await page.ClickAsync("#intercept-form button[type=submit]");
        var problem = page.Locator("#intercept-form .problem");
        await Expect(problem).ToContainTextAsync("The intercept settings were changed by someone else");

        // The settings move on: the notice says what is in force now, and the 412's version would only mislead.
        await SetByScriptAsync("~wq & ~b two");
        await Expect(page.Locator("#intercept-notice")).ToContainTextAsync("~wq & ~b two");
        await Expect(problem).ToBeEmptyAsync();
        await Expect(page.Locator("input[name=timeoutSeconds]")).ToHaveValueAsync("30");
    }
}
