using System.Net;
using System.Net.Http.Json;
using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>What the pages outside /intercept say about held messages and about a flow that ends under the user.</summary>
[Collection("dashboard-browser")]
public sealed class FlowPageInterceptTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>, IAsyncLifetime
{
    private WsWebApp App => browser.App;

    // Each test counts the held messages: none may be left from another test of the class.
    public Task InitializeAsync() => App.ResetAndDropHeldAsync();

    public Task DisposeAsync() => App.ResetAndDropHeldAsync();

    private async Task<long> HoldOneAsync(ClientPeer client, string flowId)
    {
        var state = await App.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b hold" });
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        await client.SendTextAsync("hold me");
        return await App.HeldIndexAsync(flowId);
    }

    private async Task<IPage> OpenFlowAsync(string flowId)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flowId}");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        return page;
    }

    private async Task ReleaseAsync(string flowId, long index) =>
        await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/intercept/held/{flowId}/{index}/release", UriKind.Relative), null));

    [RequiresChromiumFact]
    public async Task A_message_decided_while_the_page_was_not_on_the_hub_shows_what_became_of_it()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var index = await HoldOneAsync(client, flow.Id);

        // The hub cannot be reached (its negotiate fails): the page polls. A teammate's drop then sends its
        // MessagesChanged to nobody; the page learns of it only by reading the row again, as it does on a reconnect.
        var page = await browser.NewPageAsync();
        await page.RouteAsync("**/hubs/flows/negotiate*", route => route.AbortAsync());
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("polling");
        var row = page.Locator($"#message-rows tr[data-index='{index}']");
        await Expect(row.Locator(".b-held")).ToBeVisibleAsync();
        await row.ClickAsync();
        await Expect(page.Locator($"#message-view .message-content[data-index='{index}']")).ToBeVisibleAsync();

        await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/drop", UriKind.Relative), null));

        await Expect(row.Locator(".b-dropped")).ToBeVisibleAsync();
        await Expect(row.Locator(".b-held")).ToHaveCountAsync(0);
        await Expect(page.Locator("#message-view .badge", new() { HasText = "held" })).ToHaveCountAsync(0);
        await page.UnrouteAsync("**/hubs/flows/negotiate*");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
    }

    [RequiresChromiumFact]
    public async Task A_flow_killed_while_its_page_is_open_says_why_its_actions_are_disabled()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await OpenFlowAsync(flow.Id);
        await page.ClickAsync("#tab-actions");
        await page.FillAsync("#inject-form textarea", "a teammate's injection being typed");
        await Expect(page.Locator("#not-live-notice")).ToHaveCountAsync(0);

        Assert.Equal(HttpStatusCode.NoContent, (await App.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null)).StatusCode);

        await Expect(page.Locator("#inject-form button[type=submit]")).ToBeDisabledAsync(); // the fieldset #flow-actions is disabled
        await Expect(page.Locator("#not-live-notice")).ToHaveTextAsync("This flow is not live: inject, close and kill need an open connection.");
        await Expect(page.Locator("#inject-form textarea")).ToHaveValueAsync("a teammate's injection being typed");
    }

    [RequiresChromiumFact]
    public async Task The_nav_counts_held_messages_live_and_a_released_message_has_its_badge()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await OpenFlowAsync(flow.Id);
        await Expect(page.Locator("#nav-held")).ToBeHiddenAsync();

        await Expect(page.Locator("#nav-intercepting")).ToBeHiddenAsync();
        var index = await HoldOneAsync(client, flow.Id);
        await Expect(page.Locator("#nav-held")).ToHaveTextAsync("1");
        await Expect(page.Locator("#nav-held")).ToBeVisibleAsync();

        // Intercept being on shows in the nav on every live page, with its filter, held messages or not.
        await Expect(page.Locator("#nav-intercepting")).ToBeVisibleAsync();
        await Expect(page.Locator("#nav-intercepting")).ToHaveAttributeAsync("title", "Intercept is on: messages matching ~wq & ~b hold are held");
        var row = page.Locator($"#message-rows tr[data-index='{index}']");
        await Expect(row.Locator(".badge")).ToHaveTextAsync("held");

        await ReleaseAsync(flow.Id, index);
        await Expect(row.Locator(".badge")).ToHaveTextAsync("released");
        await Expect(page.Locator("#nav-held")).ToBeHiddenAsync();
        await Expect(page.Locator("#nav-intercepting")).ToBeVisibleAsync();
        using (var off = await App.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative)))
        {
            Assert.True(off.IsSuccessStatusCode);
        }

        await Expect(page.Locator("#nav-intercepting")).ToBeHiddenAsync();

        // As rendered by the server, on a page opened now.
        var fresh = await OpenFlowAsync(flow.Id);
        await Expect(fresh.Locator($"#message-rows tr[data-index='{index}'] .badge")).ToHaveTextAsync("released");
    }

    [RequiresChromiumFact]
    public async Task The_flow_list_marks_a_flow_with_held_messages_live_and_as_rendered()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/");
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        var row = page.Locator($"tr.flow-row[data-id='{flow.Id}']");
        await Expect(row.Locator(".held")).ToHaveCountAsync(0);

        var index = await HoldOneAsync(client, flow.Id);
        await Expect(row.Locator(".held")).ToHaveTextAsync("held 1");
        await Expect(row).ToHaveClassAsync(new System.Text.RegularExpressions.Regex(@"\bhas-held\b"));

        // As the server renders the list for a page opened now.
        var fresh = await browser.NewPageAsync();
        await fresh.GotoAsync(browser.BaseUrl + "/");
        await Expect(fresh.Locator($"tr.flow-row[data-id='{flow.Id}'] .held")).ToHaveTextAsync("held 1");

        await ReleaseAsync(flow.Id, index);
        await Expect(row.Locator(".held")).ToHaveCountAsync(0);
        await Expect(row).Not.ToHaveClassAsync(new System.Text.RegularExpressions.Regex(@"\bhas-held\b"));
    }

    [RequiresChromiumFact]
    public Task The_export_page_keeps_the_nav_held_count_live() => NavHeldCountFollowsAsync("/export");

    [RequiresChromiumFact]
    public Task The_onboarding_page_keeps_the_nav_held_count_live() => NavHeldCountFollowsAsync("/onboarding");

    private async Task NavHeldCountFollowsAsync(string path)
    {
        // Rendered with nothing held; what follows comes through the page's script, without a reload. The live badge
        // stays hidden: it speaks for a page's content, and these pages' content is not live.
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + path);
        await Expect(page.Locator("#nav-held")).ToBeHiddenAsync();
        await page.EvaluateAsync("window.loadMark = 1");

        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var index = await HoldOneAsync(client, flow.Id);
        await Expect(page.Locator("#nav-held")).ToHaveTextAsync("1");
        await Expect(page.Locator("#nav-held")).ToBeVisibleAsync();

        await ReleaseAsync(flow.Id, index);
        await Expect(page.Locator("#nav-held")).ToBeHiddenAsync();
        Assert.Equal(1, await page.EvaluateAsync<int>("window.loadMark"));
        await Expect(page.Locator("#live-status")).ToBeHiddenAsync();
    }

    [RequiresChromiumFact]
    public async Task An_injection_queued_behind_a_held_message_says_what_it_waits_for()
    {
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        var index = await HoldOneAsync(client, flow.Id);
        var page = await OpenFlowAsync(flow.Id);
        await page.ClickAsync("#tab-actions");
        await page.SelectOptionAsync("#inject-form select[name=toClient]", "false");
        await page.FillAsync("#inject-form textarea", "behind it");
        await page.ClickAsync("#inject-form button[type=submit]");

        var result = page.Locator("#inject-form .action-result");
        await Expect(result).ToHaveTextAsync($"Waiting for held message #{index} to be released or dropped (Intercept page)…");
        Assert.Empty(server.Received);

        await ReleaseAsync(flow.Id, index);
        await Expect(result).ToHaveTextAsync("Injected");
        await Eventually.AssertAsync(() => server.Texts.Contains("behind it"), "the injection went out after the held message");
    }
}
