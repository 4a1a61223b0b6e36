using System.Net;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The flow header's Replay (mitmweb's "r", Burp's reconnect) and how a replay shows in the list and on its page.</summary>
[Collection("dashboard-browser")]
public sealed class ReplayBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>
{
    private WsWebApp App => browser.App;

    /// <summary>A WebSocket flow through the proxy that sent <paramref name="text"/>, got its echo and closed.</summary>
    private async Task<HttpFlow> FinishedFlowAsync(string text)
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync(text);
            Assert.Equal(text, await client.ReceiveTextAsync());
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow finished");
        return flow;
    }

    private HttpFlow? ReplayOf(HttpFlow original) => App.Store.Query(f => f.ReplayOf == original.Id, take: 1).FirstOrDefault();

    /// <summary>Ends a live replay, so the echo peer and the store are left as other tests expect.</summary>
    private async Task KillAsync(HttpFlow flow)
    {
        using var kill = await App.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
        await Eventually.AssertAsync(() => !flow.IsLive, "the replay ended");
    }

    [RequiresChromiumFact]
    public async Task Replaying_a_finished_websocket_with_resend_lands_on_the_live_replay_with_the_resent_message_and_its_echo()
    {
        await App.ResetAsync();
        var original = await FinishedFlowAsync("say it again");

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{original.Id}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        await Expect(page.Locator("#flow-replay")).ToBeEnabledAsync();
        await Expect(page.Locator("#flow-replay-badge")).ToHaveCountAsync(0);

        // Ticked and clicked in one step, as the delete tests click: the header is rendered again once the hub connects.
        await page.EvalOnSelectorAsync("#flow-replay-form", "f => { f.querySelector('#flow-replay-resend').checked = true; f.querySelector('#flow-replay').click(); }");

        HttpFlow? replay = null;
        await Eventually.AssertAsync(() => (replay = ReplayOf(original)) is not null, "the replay was made", DashboardBrowser.Wait);
        try
        {
            await Expect(page).ToHaveURLAsync($"{browser.BaseUrl}/flows/{replay!.Id}");
            await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
            await Expect(page.Locator("#flow-state")).ToHaveTextAsync("open");
            await Expect(page.Locator("#flow-replay-badge")).ToHaveTextAsync("replay");
            var link = page.Locator("#flow-replay-of a");
            await Expect(link).ToHaveAttributeAsync("href", $"/flows/{original.Id}");
            await Expect(link).ToHaveTextAsync(original.Id);

            // The client's message went again, and the server's echo came back on the replay.
            var rows = page.Locator("#message-rows tr.msg-row");
            await Expect(rows).ToHaveCountAsync(2);
            await Expect(rows.Nth(0).Locator(".dir-out")).ToHaveCountAsync(1);
            await Expect(rows.Nth(0).Locator(".c-preview")).ToHaveTextAsync("say it again");
            await Expect(rows.Nth(1).Locator(".dir-in")).ToHaveCountAsync(1);
            await Expect(rows.Nth(1).Locator(".c-preview")).ToHaveTextAsync("say it again");
            Assert.Equal("request", replay.IsReplay);
            await DashboardBrowser.ScreenshotAsync(page, "flow-replay");

            // The original's link goes back to it.
            await link.ClickAsync();
            await Expect(page).ToHaveURLAsync($"{browser.BaseUrl}/flows/{original.Id}");
        }
        finally
        {
            await KillAsync(replay!);
        }
    }

    [RequiresChromiumFact]
    public async Task A_tick_on_a_live_flows_page_outlives_the_headers_refresh_and_a_replay_without_it_resends_nothing()
    {
        await App.ResetAsync();
        var (client, server, live) = await App.ConnectAsync();
        await using var c = client;

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{live.Id}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");

        // Ticked, then the header is rendered again for a new message: the tick stays (the form is kept).
        await page.EvalOnSelectorAsync("#flow-replay-resend", "b => { b.checked = true; }");
        await client.SendTextAsync("counted");
        Assert.Equal("counted", await client.ReceiveTextAsync());
        await Expect(page.Locator("#count-out")).ToHaveTextAsync("1");
        await Expect(page.Locator("#flow-replay-resend")).ToBeCheckedAsync();

        // Unticked: the replay is a bare reconnect.
        await page.EvalOnSelectorAsync("#flow-replay-form", "f => { f.querySelector('#flow-replay-resend').checked = false; f.querySelector('#flow-replay').click(); }");
        HttpFlow? replay = null;
        await Eventually.AssertAsync(() => (replay = ReplayOf(live)) is not null, "the replay was made", DashboardBrowser.Wait);
        try
        {
            await Expect(page).ToHaveURLAsync($"{browser.BaseUrl}/flows/{replay!.Id}");
            await Expect(page.Locator("#flow-state")).ToHaveTextAsync("open");
            await Expect(page.Locator("#messages-empty")).ToBeVisibleAsync();
            Assert.True(replay.IsLive);
            Assert.Empty(replay.WebSocket!.Snapshot());
            Assert.True(live.IsLive, "the original is left alone");
        }
        finally
        {
            await KillAsync(replay!);
        }
    }

    [RequiresChromiumFact]
    public async Task A_replay_appears_live_in_the_flow_list_with_its_badge()
    {
        await App.ResetAsync();
        var original = await FinishedFlowAsync("listed");

        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        await Expect(page.Locator($"tr.flow-row[data-id='{original.Id}']")).ToBeVisibleAsync();
        await Expect(page.Locator($"tr.flow-row[data-id='{original.Id}'] .badge.replay")).ToHaveCountAsync(0);

        // A list filtered to replays reads its rows from the server (FlowRow.razor), the unfiltered one builds them (flowRow).
        var filtered = await browser.NewPageAsync();
        await filtered.GotoAsync($"{browser.BaseUrl}/flows?filter={Uri.EscapeDataString("~replay")}");
        await Expect(filtered.Locator("body")).ToHaveAttributeAsync("data-live", "hub");

        var summary = await ApiAssert.JsonAsync(await App.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
        var replay = App.Store.Get(summary.GetProperty("id").GetString()!)!;
        try
        {
            foreach (var list in new[] { page, filtered })
            {
                var row = list.Locator($"tr.flow-row[data-id='{replay.Id}']");
                await Expect(row).ToBeVisibleAsync();
                await Expect(row.Locator(".c-state .badge.replay")).ToHaveTextAsync("replay");
                await Expect(row.Locator(".c-state .badge.replay")).ToHaveAttributeAsync("title", "its request was sent again (a replay)");
            }

            await Expect(filtered.Locator($"tr.flow-row[data-id='{original.Id}']")).ToHaveCountAsync(0);
            await DashboardBrowser.ScreenshotAsync(page, "flows-replay");
        }
        finally
        {
            await KillAsync(replay);
        }
    }

    [RequiresChromiumFact]
    public async Task A_plain_request_replays_from_its_page_to_the_new_flow_with_the_servers_answer()
    {
        await App.ResetAsync();
        var original = AddPlainPost(App.Echo.Port, "{\"again\":true}"u8.ToArray(), contentLength: 14, truncated: false);

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{original.Id}");
        await Expect(page.Locator("#flow-replay-resend")).ToHaveCountAsync(0);
        await page.EvalOnSelectorAsync("#flow-replay", "b => b.click()");

        HttpFlow? replay = null;
        await Eventually.AssertAsync(() => (replay = ReplayOf(original)) is not null, "the replay was made", DashboardBrowser.Wait);
        await Expect(page).ToHaveURLAsync($"{browser.BaseUrl}/flows/{replay!.Id}");
        // The echo peer answers a plain request to /echo with 400: recorded on the replay, which went with the body.
        await Expect(page.Locator("#http-status-line")).ToHaveTextAsync(new Regex("^HTTP/1.1 400"));
        await Expect(page.Locator("#flow-replay-badge")).ToHaveTextAsync("replay");
        await Expect(page.Locator("#flow-replay-of a")).ToHaveAttributeAsync("href", $"/flows/{original.Id}");
        Assert.Equal("{\"again\":true}"u8.ToArray(), replay.Request.Content);
    }

    [RequiresChromiumFact]
    public async Task Replay_of_a_request_whose_body_was_recorded_in_part_is_disabled_with_why_and_a_stale_click_shows_the_refusal()
    {
        await App.ResetAsync();
        var original = AddPlainPost(App.Echo.Port, [1, 2, 3], contentLength: 5000, truncated: true);

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{original.Id}");
        await Expect(page.Locator("#flow-replay")).ToBeDisabledAsync();
        await Expect(page.Locator("#flow-replay-form")).ToHaveAttributeAsync(
            "title", "This request's body was recorded only in part (3 of 5000 bytes): WsWeb sends a request again only as it was, so it cannot be replayed.");

        // The button as a stale page would have it: the API refuses, the page says why beside it and stays.
        await page.EvalOnSelectorAsync("#flow-replay", "b => { b.disabled = false; b.click(); }");
        await Expect(page.Locator("#flow-replay-problem .alert-danger")).ToContainTextAsync("recorded only in part");
        Assert.EndsWith($"/flows/{original.Id}", page.Url, StringComparison.Ordinal);
        Assert.Null(ReplayOf(original));
    }

    /// <summary>A finished plain POST to the echo peer's /echo, as an import would add it.</summary>
    private HttpFlow AddPlainPost(int port, byte[] content, long contentLength, bool truncated)
    {
        var now = WsWeb.Core.Timestamps.Now(TimeProvider.System);
        var flow = new HttpFlow(
            new HttpRequestData
            {
                Method = "POST", Scheme = "http", Host = "127.0.0.1", Port = port, Path = "/echo?c=" + Guid.NewGuid().ToString("N"),
                Headers = [new("Host", $"127.0.0.1:{port}"), new("Content-Type", "application/json")],
                Content = content, ContentLength = contentLength, ContentTruncated = truncated, TimestampStart = now, TimestampEnd = now,
            },
            now)
        {
            Response = new HttpResponseData { StatusCode = 204, Reason = "No Content", TimestampStart = now, TimestampEnd = now },
            IsImported = true,
        };
        App.Store.Add(flow);
        return flow;
    }
}
