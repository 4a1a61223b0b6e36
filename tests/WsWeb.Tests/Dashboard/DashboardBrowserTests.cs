using System.Net.Http.Json;
using System.Net.WebSockets;
using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The dashboard in headless Chromium against the real host, with real WebSocket traffic through the proxy.</summary>
[Collection("dashboard-browser")]
public sealed class DashboardBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>
{
    private WsWebApp App => browser.App;

    /// <summary>Opens a flow's detail page on its Actions tab (inject, close, kill).</summary>
    private async Task<IPage> OpenFlowActionsAsync(string flowId)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flowId}");
        await page.ClickAsync("#tab-actions");
        return page;
    }

    private static Task<int> ScrollWidthAsync(IPage page) => page.EvaluateAsync<int>("() => document.documentElement.scrollWidth");

    [RequiresChromiumFact]
    public async Task Flows_page_lists_live_flows_and_fits_1366_wide()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("""{"type":"hello","user":"alice"}""");
        await client.ReceiveTextAsync();

        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/");
        var row = page.Locator($"tr.flow-row[data-id='{flow.Id}']");
        await Expect(row).ToBeVisibleAsync();
        await Expect(row.Locator(".c-state .badge")).ToHaveTextAsync("open");
        await Expect(row.Locator(".c-url")).ToContainTextAsync($"127.0.0.1:{App.Echo.Port}/echo");
        Assert.True(await ScrollWidthAsync(page) <= 1366, $"the flow list scrolls sideways: {await ScrollWidthAsync(page)}px");
        await DashboardBrowser.ScreenshotAsync(page, "flows");

        // A filter error is shown inline, with its position, as you type.
        await page.FillAsync("#flow-filter", "~websocket & ~zz");
        await Expect(page.Locator(".filter-error")).ToContainTextAsync("~zz");
        await Expect(page.Locator("#flow-filter")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("is-invalid"));
    }

    [RequiresChromiumFact]
    public async Task A_flow_that_starts_while_the_flow_list_catches_up_stays_listed()
    {
        await App.ResetAsync();
        var (early, _, earlyFlow) = await App.ConnectAsync();
        await using var e = early;
        var page = await browser.NewPageAsync();

        // The page's catch-up after subscribing is answered late: the server's snapshot is taken when asked, and
        // delivered when the test says (a slow server or network, deterministically).
        var snapshotTaken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var deliver = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync("**/ui/flows/rows*", route =>
        {
            _ = Task.Run(async () =>
            {
                var response = await route.FetchAsync();
                snapshotTaken.TrySetResult();
                await deliver.Task;
                await route.FulfillAsync(new() { Response = response });
            });
            return Task.CompletedTask;
        });

        await page.GotoAsync(browser.BaseUrl + "/");
        await snapshotTaken.Task.WaitAsync(DashboardBrowser.Wait);
        await Expect(page.Locator("#live-status")).Not.ToHaveTextAsync("live");

        // A flow starts after the snapshot: the hub's FlowsChanged shows it while the snapshot is on its way.
        var (late, _, lateFlow) = await App.ConnectAsync();
        await using var l = late;
        var lateRow = page.Locator($"tr.flow-row[data-id='{lateFlow.Id}']");
        await Expect(lateRow).ToBeVisibleAsync();

        // The snapshot arrives and replaces the table (the marked row is a fresh one), and the late flow stays.
        await page.EvalOnSelectorAsync($"tr.flow-row[data-id='{earlyFlow.Id}']", "tr => tr.dataset.beforeSnapshot = '1'");
        deliver.SetResult();
        await Expect(page.Locator($"tr.flow-row[data-id='{earlyFlow.Id}']:not([data-before-snapshot])")).ToHaveCountAsync(1);
        await Expect(lateRow).ToBeVisibleAsync();
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        await Expect(lateRow).ToBeVisibleAsync();
    }

    [RequiresChromiumFact]
    public async Task Flow_detail_shows_new_messages_live_without_reloading()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("first");
        await client.ReceiveTextAsync();

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("#message-rows tr")).ToHaveCountAsync(2);
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        page.Load += (_, _) => Assert.Fail("the page reloaded");
        await page.EvaluateAsync("() => window.__sameDocument = true");

        // No deadline of its own: on a busy 2-core machine the hub takes seconds (see DashboardBrowser). "Live" is
        // that the rows arrive in the document that was already open (a reload would also show them, from REST).
        await client.SendTextAsync("""{"type":"live","n":2}""");
        await Expect(page.Locator("#message-rows tr.msg-row", new() { HasText = "\"live\"" })).ToHaveCountAsync(2);
        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"), "the page reloaded");

        Assert.True(await ScrollWidthAsync(page) <= 1366, $"the flow detail scrolls sideways: {await ScrollWidthAsync(page)}px");
        await page.Locator("#message-rows tr.msg-row").Last.ClickAsync();
        await Expect(page.Locator("#message-view pre.payload-json")).ToContainTextAsync("\"type\": \"live\"");
        await DashboardBrowser.ScreenshotAsync(page, "flow-detail");
    }

    [RequiresChromiumFact]
    public async Task Flow_detail_renders_from_rest_picks_content_views_and_fits_1366_wide()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("""{"type":"subscribe","channel":"ticker","symbols":["BTC","ETH"]}""");
        await client.ReceiveTextAsync();
        await client.SendBinaryAsync([0xca, 0xfe, 0xba, 0xbe, 0x00, 0x01]);
        await client.ReceiveAsync();

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(4);
        await Expect(page.Locator("#message-rows tr[data-index='2'] .c-preview")).ToHaveTextAsync("ca fe ba be 00 01");

        await page.ClickAsync("#message-rows tr[data-index='0']");
        await Expect(page.Locator("#message-view pre.payload-json")).ToContainTextAsync("\"channel\": \"ticker\"");
        await page.ClickAsync("#message-view button[data-view='hex']");
        await Expect(page.Locator("#message-view pre.payload-hex")).ToContainTextAsync("00000000  7b 22 74 79");

        // The chosen view sticks to that message; another message opens in its own default.
        await page.ClickAsync("#message-rows tr[data-index='2']");
        await Expect(page.Locator("#message-view pre.payload-hex")).ToContainTextAsync("ca fe ba be 00 01");
        await page.ClickAsync("#message-rows tr[data-index='0']");
        await Expect(page.Locator("#message-view .message-content")).ToHaveAttributeAsync("data-view", "hex");

        await page.ClickAsync("#tab-handshake");
        await Expect(page.Locator("#pane-handshake")).ToContainTextAsync("101 Switching Protocols");
        Assert.True(await ScrollWidthAsync(page) <= 1366, $"the flow detail scrolls sideways: {await ScrollWidthAsync(page)}px");
        await DashboardBrowser.ScreenshotAsync(page, "flow-detail-handshake");
    }

    [RequiresChromiumFact]
    public async Task A_large_message_view_says_how_much_it_shows_in_binary_units()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendBinaryAsync(new byte[300_000]);
        await client.ReceiveAsync();

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await page.ClickAsync("#message-rows tr[data-index='0']");
        await Expect(page.Locator("#message-view pre.payload-hex")).ToBeVisibleAsync();

        // The view is cut at 256 KiB (262,144 bytes): said in the unit it is set in, as is the message's size.
        await Expect(page.Locator("#message-view")).ToContainTextAsync("Showing the first 256 KiB of 293 KiB; use “raw” for all of it.");
        await page.ClickAsync("#message-view button[data-view='text']");
        await Expect(page.Locator("#message-view pre.payload-text")).ToBeVisibleAsync();
        await Expect(page.Locator("#message-view")).ToContainTextAsync("Showing the first 256 KiB of 293 KiB");
    }

    [RequiresChromiumFact]
    public async Task A_flow_with_100k_messages_renders_a_window_and_pages_older_messages_on_scroll()
    {
        // A long-lived connection's worth of messages, recorded through the store as the relay does.
        var store = App.Store;
        var flow = new WsWeb.Core.Flows.HttpFlow(
            new WsWeb.Core.Flows.HttpRequestData { Method = "GET", Scheme = "http", Host = "big.example", Port = 80, Path = "/feed" },
            WsWeb.Core.Timestamps.Now(TimeProvider.System));
        store.Add(flow);
        flow.WebSocket = store.CreateWebSocketData();
        for (var i = 0; i < 100_000; i++)
        {
            var text = System.Text.Encoding.UTF8.GetBytes($$"""{"seq":{{i}}}""");
            store.AddMessage(flow, new WsWeb.Core.WebSockets.WebSocketMessage(WsWeb.Core.WebSockets.Opcode.Text, i % 2 == 0, text, flow.TimestampCreated + i / 1000.0));
        }

        store.FlowEnded(flow);
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");

        // Only a window is rendered, ending with the newest message.
        var rows = page.Locator("#message-rows tr.msg-row");
        await Expect(rows.Last).ToHaveAttributeAsync("data-index", "99999");
        var rendered = await rows.CountAsync();
        Assert.InRange(rendered, 1, 1000);
        var firstIndex = long.Parse(await rows.First.GetAttributeAsync("data-index") ?? "-1", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(firstIndex > 90_000, $"the page rendered from index {firstIndex}");

        // Scrolling to the top pages in older messages from the REST cursor.
        await page.EvalOnSelectorAsync("#messages-scroll", "el => el.scrollTop = 0");
        await Expect(page.Locator($"#message-rows tr[data-index='{firstIndex - 1}']")).ToHaveCountAsync(1);
        Assert.True(await rows.CountAsync() > rendered);
    }

    [RequiresChromiumFact]
    public async Task Inject_from_the_ui_reaches_the_echo_peer()
    {
        await App.ResetAsync();
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;

        var page = await OpenFlowActionsAsync(flow.Id);
        await page.SelectOptionAsync("#inject-form select[name=toClient]", "false");
        await page.FillAsync("#inject-form textarea[name=content]", "injected from the dashboard");
        await page.ClickAsync("#inject-form button[type=submit]");
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Injected");

        await Eventually.AssertAsync(() => server.Texts.Contains("injected from the dashboard"), "the echo peer got the injected message");
        Assert.Equal("injected from the dashboard", await client.ReceiveTextAsync());
        await Expect(page.Locator("#message-rows tr.msg-row .badge.b-injected")).ToHaveCountAsync(1);

        // Bad input comes back as an inline RFC 7807 problem.
        await page.SelectOptionAsync("#inject-form select[name=encoding]", "hex");
        await page.FillAsync("#inject-form textarea[name=content]", "zz");
        await page.ClickAsync("#inject-form button[type=submit]");
        await Expect(page.Locator("#inject-form .problem .alert-danger")).ToContainTextAsync("content");
        await page.ClickAsync("#tab-actions");
        await DashboardBrowser.ScreenshotAsync(page, "flow-actions");
    }

    [RequiresChromiumFact]
    public async Task Live_rows_arrive_in_order_without_gaps_when_animation_frames_are_late()
    {
        await App.ResetAsync();
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await browser.NewPageAsync();

        // A busy or background tab: frames come late, so hub batches race the catch-up fetch after each inject.
        await page.AddInitScriptAsync("window.requestAnimationFrame = (cb) => setTimeout(() => cb(performance.now()), 500);");
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await page.ClickAsync("#tab-actions");
        await page.SelectOptionAsync("#inject-form select[name=toClient]", "false");
        for (var i = 0; i < 3; i++)
        {
            await page.FillAsync("#inject-form textarea[name=content]", $"inject {i}");
            await page.ClickAsync("#inject-form button[type=submit]");
        }

        await Eventually.AssertAsync(() => server.Texts.Count() == 3, "the echo peer got three injected messages");
        await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(6);
        var indices = await page.Locator("#message-rows tr.msg-row").EvaluateAllAsync<int[]>("rows => rows.map(r => +r.dataset.index)");
        Assert.Equal([0, 1, 2, 3, 4, 5], indices);
    }

    [RequiresChromiumFact]
    public async Task A_bad_message_filter_shows_where_it_is_wrong_lists_nothing_and_the_page_stays_live()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var page = await browser.NewPageAsync();

        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}?filter={Uri.EscapeDataString("~json $.type ==")}");
        await Expect(page.Locator("#message-filter-form .filter-error")).ToBeVisibleAsync();
        await client.SendTextAsync("after a bad filter");

        // As the flow list does with a bad filter, no message is listed (not every one); the page is still live: the
        // header counts the message without a reload.
        await Expect(page.Locator("#count-out")).ToHaveTextAsync("1");
        await Expect(page.Locator("#count-in")).ToHaveTextAsync("1");
        await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(0);
        await Expect(page.Locator("#messages-empty")).ToContainTextAsync("The filter is not valid");
    }

    [RequiresChromiumFact]
    public async Task Intercept_edit_in_the_ui_forwards_the_edited_text()
    {
        await App.ResetAsync();
        var (client, server, _) = await App.ConnectAsync();
        await using var c = client;
        try
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/intercept");
            await page.FillAsync("#intercept-filter", "~wq & ~b secret");
            await page.ClickAsync("#intercept-form button[type=submit]");
            await Expect(page.Locator("#intercept-state")).ToContainTextAsync("~wq & ~b secret");

            await client.SendTextAsync("my secret password");
            var card = page.Locator(".held-card");
            await Expect(card).ToHaveCountAsync(1);
            await Expect(card.Locator("textarea")).ToHaveValueAsync("my secret password");
            Assert.Empty(server.Received);
            await DashboardBrowser.ScreenshotAsync(page, "intercept");

            await card.Locator("textarea").FillAsync("my [redacted]");
            await card.Locator("button[type=submit]").ClickAsync();
            await Eventually.AssertAsync(() => server.Texts.Contains("my [redacted]"), "the echo peer got the edited message");
            Assert.Equal("my [redacted]", Assert.Single(server.Texts));
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Intercept_edit_of_messages_larger_than_the_preview_loads_the_whole_content_before_release()
    {
        await App.ResetAsync();
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        var (binaryClient, binaryServer, binaryFlow) = await App.ConnectAsync();
        await using var bc = binaryClient;
        try
        {
            var page = await browser.NewPageAsync();

            // Hold back the content reads, to see the cards while their whole content is on its way.
            var contentGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await page.RouteAsync("**/api/flows/*/messages/*/content", async route =>
            {
                await contentGate.Task;
                await route.ContinueAsync();
            });
            await page.GotoAsync(browser.BaseUrl + "/intercept");
            await page.FillAsync("#intercept-filter", "~wq & ~b secret");
            await page.ClickAsync("#intercept-form button[type=submit]");
            await Expect(page.Locator("#intercept-state")).ToContainTextAsync("~wq & ~b secret");

            var text = "my secret " + string.Concat(Enumerable.Range(0, 30_000).Select(i => $"{i:D9}|"));
            await client.SendTextAsync(text);
            var binary = System.Text.Encoding.ASCII.GetBytes("secret").Concat(Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7))).ToArray();
            await binaryClient.SendBinaryAsync(binary);

            var card = page.Locator($".held-card[data-key^='{flow.Id}/']");
            var binaryCard = page.Locator($".held-card[data-key^='{binaryFlow.Id}/']");
            await Expect(card).ToHaveCountAsync(1);
            await Expect(binaryCard).ToHaveCountAsync(1);

            // A preview is not the message: it cannot be edited or released until the whole content is in.
            await Expect(card.Locator("textarea")).ToHaveJSPropertyAsync("readOnly", true);
            await Expect(card.Locator("button[type=submit]")).ToBeDisabledAsync();
            await Expect(card.Locator(".held-loading")).ToBeVisibleAsync();
            await Expect(card.Locator("button[data-api$='/drop']")).ToBeEnabledAsync();
            Assert.Equal(4096, await card.Locator("textarea").EvaluateAsync<int>("el => el.value.length"));

            contentGate.SetResult();
            await Expect(card.Locator("button[type=submit]")).ToBeEnabledAsync();
            await Expect(card.Locator("textarea")).ToHaveJSPropertyAsync("readOnly", false);
            await Expect(card.Locator(".held-loading")).ToHaveCountAsync(0);
            Assert.Equal(text, await card.Locator("textarea").InputValueAsync());
            await Expect(binaryCard.Locator("button[type=submit]")).ToBeEnabledAsync();
            Assert.Equal(Convert.ToBase64String(binary), await binaryCard.Locator("textarea").InputValueAsync());
            Assert.Empty(server.Received);
            Assert.Empty(binaryServer.Received);

            var edited = text.Replace("my secret", "my [redacted]", StringComparison.Ordinal);
            await card.Locator("textarea").FillAsync(edited);
            await card.Locator("button[type=submit]").ClickAsync();
            await Eventually.AssertAsync(() => server.Texts.Any(), "the echo peer got the edited message");
            Assert.Equal(edited, Assert.Single(server.Texts));

            // Released as loaded, the binary message goes on byte for byte and is not marked edited.
            await binaryCard.Locator("button[type=submit]").ClickAsync();
            await Eventually.AssertAsync(() => !binaryServer.Received.IsEmpty, "the echo peer got the binary message");
            Assert.Equal(binary, Assert.Single(binaryServer.Received).Data);
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
            var released = App.Store.Get(binaryFlow.Id)!.WebSocket!.Messages.First(m => m.FromClient);
            Assert.Null(released.OriginalContent);
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Releasing_held_messages_unedited_forwards_them_byte_for_byte()
    {
        await App.ResetAsync();
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        try
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/intercept");
            await page.FillAsync("#intercept-filter", "~wq");
            await page.ClickAsync("#intercept-form button[type=submit]");
            await Expect(page.Locator("#intercept-state")).ToContainTextAsync("~wq");

            // What a textarea cannot hold as it is: CR LF (its value has LF), a leading line break (the HTML parser
            // eats the first one after <textarea>), and both in a message longer than the held list's preview.
            var large = "big\r\n" + string.Concat(Enumerable.Range(0, 1000).Select(i => $"{i:D6}\r\n"));
            string[] texts = ["\nlead", "a\r\nb", large];
            foreach (var text in texts)
            {
                await client.SendTextAsync(text);
                await Expect(page.Locator(".held-card")).ToHaveCountAsync(1);
                var card = page.Locator(".held-card");
                await Expect(card.Locator("button[type=submit]")).ToBeEnabledAsync(); // the preview's whole content is in
                if (text.Contains('\r', StringComparison.Ordinal))
                {
                    await Expect(card.Locator(".held-cr-note")).ToContainTextAsync("carriage returns (CR)");
                }
                else
                {
                    await Expect(card.Locator(".held-cr-note")).ToHaveCountAsync(0);
                    Assert.Equal(text, await card.Locator("textarea").InputValueAsync());
                }

                await card.Locator("button[type=submit]").ClickAsync();
                await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
                await Eventually.AssertAsync(() => server.Texts.Count() == Array.IndexOf(texts, text) + 1, "the echo peer got the released message");
            }

            Assert.Equal(texts, server.Texts);
            var recorded = App.Store.Get(flow.Id)!.WebSocket!.Messages.Where(m => m.FromClient).ToList();
            Assert.Equal(texts, recorded.Select(m => m.Text));
            Assert.All(recorded, m => Assert.Null(m.OriginalContent)); // released, not edited
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Close_with_a_code_from_the_ui_reaches_both_peers()
    {
        await App.ResetAsync();
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;

        var page = await OpenFlowActionsAsync(flow.Id);
        await page.FillAsync("#close-form input[name=code]", "4321");
        await page.FillAsync("#close-form input[name=reason]", "from the ui");
        await page.ClickAsync("#close-form button[type=submit]");

        var (clientStatus, clientReason) = await client.CloseReceived.Task.WaitAsync(DashboardBrowser.Wait);
        var (serverStatus, serverReason) = await server.CloseReceived.Task.WaitAsync(DashboardBrowser.Wait);
        Assert.Equal((WebSocketCloseStatus)4321, clientStatus);
        Assert.Equal("from the ui", clientReason);
        Assert.Equal((WebSocketCloseStatus)4321, serverStatus);
        Assert.Equal("from the ui", serverReason);

        // The client answers the close (the echo peer already did); the flow ends and the page says so.
        await client.Socket.CloseOutputAsync((WebSocketCloseStatus)4321, "from the ui", CancellationToken.None);
        await Expect(page.Locator("#flow-state")).ToContainTextAsync("closed 4321");
        await Expect(page.Locator("#close-form button[type=submit]")).ToBeDisabledAsync();
    }

    [RequiresChromiumFact]
    public async Task Rules_export_and_onboarding_pages_work_and_are_captured()
    {
        await App.ResetAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/rules");
        await page.FillAsync("#rule-form input[name=name]", "rename alice");
        await page.FillAsync("#rule-filter", "~ws & ~text");
        await page.SelectOptionAsync("#rule-action", "replace");
        await page.FillAsync("#rule-form input[name='replace.pattern']", "alice");
        await page.FillAsync("#rule-form input[name='replace.replacement']", "bob");
        await page.ClickAsync("#rule-submit");
        await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(1);
        await Expect(page.Locator("tr.rule-row")).ToContainTextAsync("alice → bob");

        // A filter the box has marked wrong is not sent: the box says where, and it gets the focus back.
        await page.FillAsync("#rule-filter", "~nope");
        await Expect(page.Locator("#rule-form .filter-error")).ToContainTextAsync("~nope");
        await page.FocusAsync("#rule-submit");
        await page.ClickAsync("#rule-submit");
        await Expect(page.Locator("#rule-filter")).ToBeFocusedAsync();
        await Expect(page.Locator("#rule-form .problem .alert-danger")).ToHaveCountAsync(0);
        Assert.Single(App.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules);

        // What only the server checks is refused inline with its problem, in words: a pattern that is no regex.
        await page.FillAsync("#rule-filter", "~ws & ~text");
        await Expect(page.Locator("#rule-form .filter-error")).ToHaveCountAsync(0);
        await page.SelectOptionAsync("#rule-action", "replace");
        await page.FillAsync("#rule-form input[name='replace.pattern']", "(unclosed");
        await page.FillAsync("#rule-form input[name='replace.replacement']", "x");
        await page.ClickAsync("#rule-submit");
        await Expect(page.Locator("#rule-form .problem .alert-danger")).ToContainTextAsync("pattern");
        await Expect(page.Locator("#rule-form .problem .alert-danger")).ToContainTextAsync("Not accepted: fix what is listed below");

        await page.ClickAsync("tr.rule-row .rule-toggle");
        await Expect(page.Locator("tr.rule-row .rule-toggle")).ToHaveTextAsync("off");
        await Expect(page.Locator("tr.rule-row .rule-toggle")).ToHaveAttributeAsync("aria-checked", "false");
        await DashboardBrowser.ScreenshotAsync(page, "rules");

        // Rules are numbered in the order they run; ↓ moves the first after the second, for every open page.
        using (var second = await App.Api.PostAsJsonAsync(new Uri("/api/rules", UriKind.Relative), new { name = "second", filter = "~ws", action = "drop" }))
        {
            second.EnsureSuccessStatusCode();
        }

        await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(2);
        await Expect(page.Locator("tr.rule-row").First.Locator(".rule-up")).ToBeDisabledAsync();
        await page.Locator("tr.rule-row").First.Locator(".rule-down").ClickAsync();
        await Expect(page.Locator("tr.rule-row").First.Locator(".c-name")).ToHaveTextAsync("second");
        await Expect(page.Locator("tr.rule-row").Nth(1).Locator(".c-order")).ToHaveTextAsync("2");
        await Expect(page.Locator("tr.rule-row").Nth(1).Locator(".rule-down")).ToBeDisabledAsync();
        Assert.Equal("second", App.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules[0].Name);
        using (var gone = await App.Api.DeleteAsync(new Uri($"/api/rules/{App.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules[0].Id}", UriKind.Relative)))
        {
            gone.EnsureSuccessStatusCode();
        }

        await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(1);

        // Delete asks first, as Clear flows does: declined, nothing is sent; agreed, the rule goes.
        await page.EvaluateAsync("() => { window.confirm = () => false; document.querySelector('tr.rule-row .rule-delete').click(); }");
        Assert.Single(App.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules);
        await page.EvaluateAsync("() => { window.confirm = () => true; document.querySelector('tr.rule-row .rule-delete').click(); }");
        await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(0);
        Assert.Empty(App.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules);
        await App.ResetAsync();

        await page.GotoAsync(browser.BaseUrl + "/export");
        await Expect(page.Locator("#export-all a")).ToHaveCountAsync(3);

        // Import a capture through the form: the upload shows its progress and the page reports what it read.
        var (client, _, flow) = await App.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("to be exported");
            await client.ReceiveTextAsync();
        }

        using var exported = await App.Api.GetAsync($"/api/flows/{flow.Id}/export?format=har");
        var har = (await exported.Content.ReadAsStringAsync()).Replace(flow.Id, Guid.NewGuid().ToString(), StringComparison.Ordinal);
        await page.SetInputFilesAsync("#import-form input[type=file]", new FilePayload { Name = "capture.har", MimeType = "application/json", Buffer = System.Text.Encoding.UTF8.GetBytes(har) });
        await page.ClickAsync("#import-form button[type=submit]");
        await Expect(page.Locator("#import-form .action-result")).ToContainTextAsync("Imported 1 flows (2 messages) from har");
        Assert.Equal(1.0, await page.EvalOnSelectorAsync<double>("#import-form progress", "p => p.value"));

        // The report is something to read, not a flash: it outlives the 3 s confirmations get.
        await page.WaitForTimeoutAsync(3500);
        await Expect(page.Locator("#import-form .action-result")).ToContainTextAsync("Imported 1 flows (2 messages) from har");
        await DashboardBrowser.ScreenshotAsync(page, "export");

        await page.GotoAsync(browser.BaseUrl + "/onboarding");
        await Expect(page.Locator("#ca-sha256")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^([0-9A-F]{2}:){31}[0-9A-F]{2}$"));

        // The snippets name the ports WsWeb is bound to, which the options leave at 0 here ("pick a free port").
        await Expect(page.Locator("#proxy-address")).ToHaveTextAsync($"127.0.0.1:{browser.App.ProxyPort}");
        await Expect(page.Locator("body")).ToContainTextAsync($"http://127.0.0.1:{browser.App.WebPort}/cert/pem");
        var pem = await page.APIRequest.GetAsync(browser.BaseUrl + "/cert/pem");
        Assert.Contains("BEGIN CERTIFICATE", await pem.TextAsync(), StringComparison.Ordinal);
        await DashboardBrowser.ScreenshotAsync(page, "onboarding");
    }
    /// <summary>Room left in a control once its widest text is drawn (option labels of a select, the value of an input), in px.</summary>
    private const string TextSlack = """
        el => {
            const cs = getComputedStyle(el);
            const ctx = document.createElement("canvas").getContext("2d");
            ctx.font = cs.font;
            const texts = el.tagName === "SELECT" ? [...el.options].map(o => o.text) : [el.value];
            const need = Math.max(...texts.map(t => ctx.measureText(t).width));
            return el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - need;
        }
        """;

    [RequiresChromiumFact]
    public async Task A_flow_page_whose_header_wraps_still_fits_the_window()
    {
        // A long URL and a close line make the header two or three lines: the messages give way, the page does not scroll.
        await App.ResetAsync();
        var echo = App.Echo.Port;
        var client = await ClientPeer.ConnectAsync(App.ProxyUri, new Uri($"ws://127.0.0.1:{echo}/echo?{new string('q', 600)}"), "wrap");
        await client.SendTextAsync("before the close");
        await client.ReceiveTextAsync();
        await client.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done with a reason long enough to take some room");
        await client.DisposeAsync();
        var flow = App.Store.Query(f => f.Request.Path.Contains("qqqq", StringComparison.Ordinal)).Single();
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");

        var page = await browser.NewPageAsync();
        foreach (var width in new[] { 1400, 800 })
        {
            await page.SetViewportSizeAsync(width, 768);
            await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
            await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(2);
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollHeight <= innerHeight"), $"the flow page scrolls at {width}px");
            var bottom = await page.EvalOnSelectorAsync<double>("#messages-scroll", "el => el.getBoundingClientRect().bottom");
            Assert.True(bottom <= 768, $"the messages end at {bottom}px, below the window, at {width}px");
            await DashboardBrowser.ScreenshotAsync(page, $"flow-wrapped-{width}");
        }

        // Narrow, the message list takes the whole width (the panes stack), and the flow list gives the URL the room
        // the client and subprotocol columns had.
        var messagesWidth = await page.EvalOnSelectorAsync<double>("#messages-scroll", "el => el.getBoundingClientRect().width");
        Assert.True(messagesWidth > 700, $"the messages are {messagesWidth}px wide in an 800px window");
        await page.GotoAsync(browser.BaseUrl + "/");
        await Expect(page.Locator("tr.flow-row")).Not.ToHaveCountAsync(0);
        await Expect(page.Locator("tr.flow-row .c-client").First).ToBeHiddenAsync();
        // Read in one go: a live update may replace a row between finding it and measuring it.
        var urlShare = await page.EvaluateAsync<double>("() => { const td = document.querySelector('tr.flow-row .c-url'); return td.offsetWidth / td.closest('table').offsetWidth; }");
        Assert.True(urlShare > 0.4, $"the URL column takes {urlShare:P0} of the flow list at 800px");
        await DashboardBrowser.ScreenshotAsync(page, "flows-800");
    }

    [RequiresChromiumFact]
    public async Task Message_rows_are_reached_moved_and_opened_with_the_keyboard()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("""{"type":"first"}""");
        await client.ReceiveTextAsync();
        await client.SendTextAsync("second");
        await client.ReceiveTextAsync();

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        var row = (int index) => page.Locator($"#message-rows tr[data-index='{index}']");
        await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(4);

        // Tab reaches the list at one stop, the newest row; the arrows move through it.
        await page.FocusAsync("#follow");
        await page.Keyboard.PressAsync("Tab");
        await Expect(row(3)).ToBeFocusedAsync();
        for (var i = 0; i < 3; i++)
        {
            await page.Keyboard.PressAsync("ArrowUp");
        }

        await Expect(row(0)).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("ArrowUp");
        await Expect(row(0)).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#message-view pre.payload-json")).ToContainTextAsync("\"type\": \"first\"");
        await Expect(row(0)).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("selected"));

        await page.Keyboard.PressAsync("ArrowDown");
        await page.Keyboard.PressAsync("ArrowDown");
        await Expect(row(2)).ToBeFocusedAsync();

        // The message follows the arrows once they rest, as in a browser's network panel; Space shows it at once.
        await Expect(page.Locator("#message-view .message-content")).ToHaveAttributeAsync("data-index", "2");
        await page.Keyboard.PressAsync(" ");
        await Expect(page.Locator("#message-view .message-content")).ToHaveAttributeAsync("data-index", "2");
        await Expect(page.Locator("#message-view pre.payload")).ToHaveTextAsync("second");

        // Leaving and coming back lands on the row last used, not the first one.
        await page.Keyboard.PressAsync("Tab");
        await Expect(row(2)).Not.ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Shift+Tab");
        await Expect(row(2)).ToBeFocusedAsync();
        Assert.Equal(1, await page.Locator("#message-rows tr[tabindex='0']").CountAsync());

        // "/" goes to the message filter from the list.
        await page.Keyboard.PressAsync("/");
        await Expect(page.Locator("#message-filter")).ToBeFocusedAsync();
        await Expect(page.Locator("#keys-hint")).ToContainTextAsync("/ filter");

        // Live rows join the list out of the tab order.
        await client.SendTextAsync("third");
        await Expect(page.Locator("#message-rows tr.msg-row")).ToHaveCountAsync(6);
        Assert.Equal(1, await page.Locator("#message-rows tr[tabindex='0']").CountAsync());
        Assert.Equal("-1", await row(5).GetAttributeAsync("tabindex"));
    }

    [RequiresChromiumFact]
    public async Task Flows_page_with_a_filter_says_nothing_matches_and_keeps_the_table_on_screen()
    {
        await App.ResetAsync();
        var page = await browser.NewPageAsync();
        foreach (var (filter, says) in new[] { ("~d nothing.invalid", "No flow matches the filter."), ("~websocket & ~zz", "The filter is not valid") })
        {
            await page.GotoAsync($"{browser.BaseUrl}/flows?filter={Uri.EscapeDataString(filter)}");
            await Expect(page.Locator("#flows-empty")).ToContainTextAsync(says);
            var bottom = await page.EvalOnSelectorAsync<double>(".flows-scroll", "el => el.getBoundingClientRect().bottom");
            Assert.True(bottom <= 768, $"with filter {filter} the table ends at {bottom}px, below the 768px window");
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollHeight <= innerHeight"), "the flows page scrolls");
        }

        await Expect(page.Locator(".filter-error")).ToBeVisibleAsync();
        await DashboardBrowser.ScreenshotAsync(page, "flows-bad-filter");
    }

    [RequiresChromiumFact]
    public async Task A_flow_filter_that_does_not_parse_says_so_instead_of_no_flow_matches()
    {
        await App.ResetAsync();
        var (client, _, _) = await App.ConnectAsync();
        await using var c = client;
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows?filter={Uri.EscapeDataString("~u foo & ~zz")}");

        // The caret under the box shows where; the list says the filter is wrong, not that nothing matched, and
        // shows no count (nothing was counted).
        await Expect(page.Locator(".filter-error")).ToContainTextAsync("~zz");
        await Expect(page.Locator("#flows-empty")).ToBeVisibleAsync();
        await Expect(page.Locator("#flows-empty")).ToContainTextAsync("The filter is not valid");
        await Expect(page.Locator("#flows-empty")).Not.ToContainTextAsync("No flow matches");
        await Expect(page.Locator("#flow-count")).ToHaveCountAsync(0);
        await Expect(page.Locator("#flow-rows tr")).ToHaveCountAsync(0);

        // The list's own fragment refuses the filter too, naming it, instead of an empty list with a total of 0.
        var rows = await page.APIRequest.GetAsync($"{browser.BaseUrl}/ui/flows/rows?filter={Uri.EscapeDataString("~u foo & ~zz")}");
        Assert.Equal(400, rows.Status);
        Assert.Contains("~zz", await rows.TextAsync(), StringComparison.Ordinal);
    }

    [RequiresChromiumFact]
    public async Task Flows_page_says_when_it_shows_only_the_newest_flows()
    {
        var added = new List<string>();
        try
        {
            for (var i = 0; i < WsWeb.Dashboard.FlowQueries.FlowListLimit + 1; i++)
            {
                var http = new WsWeb.Core.Flows.HttpFlow(
                    new WsWeb.Core.Flows.HttpRequestData { Method = "GET", Scheme = "http", Host = "cap.example", Port = 80, Path = $"/{i}" },
                    WsWeb.Core.Timestamps.Now(TimeProvider.System));
                App.Store.Add(http);
                added.Add(http.Id);
            }

            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/");
            await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
            await Expect(page.Locator("#flow-rows tr")).ToHaveCountAsync(500);
            await Expect(page.Locator("#flow-count")).ToHaveTextAsync($"newest 500 of {App.Store.Count}");

            // A live flow joins the count.
            var (client, _, _) = await App.ConnectAsync();
            await using (client)
            {
                await Expect(page.Locator("#flow-count")).ToHaveTextAsync($"newest 500 of {App.Store.Count}");
            }
        }
        finally
        {
            foreach (var id in added)
            {
                App.Store.Remove(id);
            }
        }
    }

    [RequiresChromiumFact]
    public async Task Export_with_a_bad_filter_stays_on_the_page_and_a_good_one_downloads()
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/export");
        await page.FillAsync("#export-filter", "~nope");
        await page.ClickAsync("#export-filtered-form button[value=json]");
        await Expect(page.Locator("#export-filtered-form .filter-error")).ToContainTextAsync("~nope");
        await Expect(page.Locator("#export-filter")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("is-invalid"));
        Assert.Equal(browser.BaseUrl + "/export", page.Url);

        await page.FillAsync("#export-filter", "~websocket");
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#export-filtered-form button[value=har]"));
        Assert.Contains("format=har", download.Url, StringComparison.Ordinal);
        Assert.Contains("filter=~websocket", Uri.UnescapeDataString(download.Url), StringComparison.Ordinal);
        await Expect(page.Locator("#export-filtered-form .filter-error")).ToHaveCountAsync(0);
    }

    [RequiresChromiumFact]
    public async Task Live_badge_shows_only_on_pages_with_live_updates()
    {
        var page = await browser.NewPageAsync();
        foreach (var path in new[] { "/export", "/onboarding" })
        {
            await page.GotoAsync(browser.BaseUrl + path, new() { WaitUntil = WaitUntilState.NetworkIdle });
            await Expect(page.Locator("#live-status")).ToBeHiddenAsync();
        }

        // The rules page follows teammates' changes and hit counts through the hub too.
        foreach (var path in new[] { "/", "/intercept", "/rules" })
        {
            await page.GotoAsync(browser.BaseUrl + path);
            await Expect(page.Locator("#live-status")).ToBeVisibleAsync();
            await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        }
    }

    [RequiresChromiumFact]
    public async Task Live_flow_rows_show_body_bytes_for_plain_http_flows()
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/");

        // The script's row for a hub update mirrors FlowRow.razor (see the component test).
        var bytes = await page.EvaluateAsync<string[]>("""
            () => {
                const f = { id: "h", method: "GET", url: "http://h.example/", status: 200, isWebSocket: false, isLive: false,
                    messagesFromClient: 0, messagesFromServer: 0, bytesFromClient: 0, bytesFromServer: 0, timestampCreated: 1700000000,
                    requestContentLength: 300, responseContentLength: 1200 };
                const t = document.createElement("template");
                t.innerHTML = `<table><tbody>${window.wsweb.flowRow(f)}</tbody></table>`;
                const cell = t.content.querySelector(".c-bytes");
                return [cell.textContent, cell.title, t.content.querySelector(".c-url .flow-kind").textContent];
            }
            """);
        Assert.Equal(["1.5 kB", "request body 300 B · response body 1200 B", "GET"], bytes);
    }

    [RequiresChromiumFact]
    public async Task Controls_show_their_whole_text_and_long_rule_names_leave_the_filter_room()
    {
        await App.ResetAsync();
        var page = await browser.NewPageAsync();
        await page.GotoAsync(browser.BaseUrl + "/intercept");
        var select = await page.EvalOnSelectorAsync<double>("select[name=timeoutAction]", TextSlack);
        Assert.True(select >= 0, $"the timeout action select clips its label by {-select}px");

        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await page.SetViewportSizeAsync(1024, 768);
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await page.ClickAsync("#tab-actions");
        await page.FillAsync("#close-form input[name=code]", "4999");
        var code = await page.EvalOnSelectorAsync<double>("#close-form input[name=code]", TextSlack);
        Assert.True(code >= 16, $"the close code leaves {code}px beside its value for the spin buttons at 1024px wide");

        var rule = new { name = "a-rule-name-without-any-spaces-that-goes-on-and-on-and-on-for-a-very-long-way", filter = "~ws & ~text & ~b heartbeat", action = "drop", enabled = true };
        using (var created = await App.Api.PostAsJsonAsync(new Uri("/api/rules", UriKind.Relative), rule))
        {
            created.EnsureSuccessStatusCode();
        }

        try
        {
            await page.SetViewportSizeAsync(1366, 768);
            await page.GotoAsync(browser.BaseUrl + "/rules");
            var widths = await page.EvalOnSelectorAsync<double[]>("tr.rule-row", "tr => [tr.querySelector('.c-name').offsetWidth, tr.querySelector('.c-filter').offsetWidth, tr.closest('table').offsetWidth]");
            Assert.True(widths[1] >= widths[2] / 4, $"the filter column is {widths[1]}px of {widths[2]}px beside a long name ({widths[0]}px)");
            Assert.True(await ScrollWidthAsync(page) <= 1366);
            await DashboardBrowser.ScreenshotAsync(page, "rules-long-name");
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Editing_or_cancelling_after_a_refused_rule_clears_its_errors()
    {
        await App.ResetAsync();
        try
        {
            await ApiAssert.JsonAsync(await App.Api.PostJsonAsync("/api/rules", new { name = "slow down", filter = "~ws", action = "delay", delayMs = 10 }), System.Net.HttpStatusCode.Created);
            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/rules");
            await Expect(page.Locator("tr.rule-row")).ToHaveCountAsync(1);
            var filter = page.Locator("#rule-filter");
            var feedback = page.Locator("#rule-form .filter-feedback");
            var problem = page.Locator("#rule-form .problem");

            // Both kinds of error at once: the server's refusal (a pattern that is no regex: only it checks that) in the
            // problem box, then a filter the box marks wrong (a form with one is not sent at all).
            async Task RefuseAsync()
            {
                await filter.FillAsync("~ws");
                await page.SelectOptionAsync("#rule-action", "replace");
                await page.FillAsync("#rule-form input[name='replace.pattern']", "(unclosed");
                await page.FillAsync("#rule-form input[name='replace.replacement']", "x");
                await page.ClickAsync("#rule-submit");
                await Expect(problem.Locator(".alert-danger")).ToBeVisibleAsync();
                await filter.FillAsync("~ws & (");
                await Expect(feedback).ToContainTextAsync("missing ')' opened at position 6");
                await Expect(filter).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("is-invalid"));
            }

            async Task ExpectNoErrorAsync(string value)
            {
                await Expect(filter).ToHaveValueAsync(value);
                await Expect(filter).Not.ToHaveClassAsync(new System.Text.RegularExpressions.Regex("is-invalid"));
                await Expect(feedback).ToBeEmptyAsync();
                await Expect(problem).ToBeEmptyAsync();
            }

            // A refused add, then Edit on the existing rule: the form shows the rule, not the add's errors.
            await RefuseAsync();
            await page.ClickAsync("tr.rule-row .rule-edit");
            await Expect(page.Locator("#rule-submit")).ToHaveTextAsync("Save");
            await ExpectNoErrorAsync("~ws");

            // A refused save, then Cancel edit: back to an empty new rule.
            await RefuseAsync();
            await page.ClickAsync("#rule-cancel");
            await Expect(page.Locator("#rule-submit")).ToHaveTextAsync("Add rule");
            await ExpectNoErrorAsync("");
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task The_encoding_of_a_held_message_converts_its_content_and_keeps_text_it_cannot_convert()
    {
        await App.ResetAsync();
        var (client, server, _) = await App.ConnectAsync();
        await using var c = client;
        try
        {
            await ApiAssert.JsonAsync(await App.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b secret" }));
            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/intercept");
            await client.SendTextAsync("secret X é");
            var card = page.Locator(".held-card");
            var content = card.Locator("textarea");
            var encoding = card.Locator("select[name=encoding]");
            await Expect(content).ToHaveValueAsync("secret X é");

            // UTF-8 ⇄ hex ⇄ base64, byte for byte.
            await encoding.SelectOptionAsync("hex");
            await Expect(content).ToHaveValueAsync("73 65 63 72 65 74 20 58 20 c3 a9");
            await encoding.SelectOptionAsync("base64");
            await Expect(content).ToHaveValueAsync("c2VjcmV0IFggw6k=");
            await encoding.SelectOptionAsync("utf8");
            await Expect(content).ToHaveValueAsync("secret X é");

            // Text that is not valid in the encoding shown stays as typed, in that encoding, and the box says why.
            await encoding.SelectOptionAsync("hex");
            await content.FillAsync("73 65 63 72 65 74 20 5");
            await encoding.SelectOptionAsync("base64");
            await Expect(encoding).ToHaveValueAsync("hex");
            await Expect(content).ToHaveValueAsync("73 65 63 72 65 74 20 5");
            await Expect(card.Locator(".encoding-error")).ToContainTextAsync("not valid hex");

            // Bytes that are not UTF-8 stay hex too.
            await content.FillAsync("ff fe");
            await encoding.SelectOptionAsync("utf8");
            await Expect(encoding).ToHaveValueAsync("hex");
            await Expect(content).ToHaveValueAsync("ff fe");
            await Expect(card.Locator(".encoding-error")).ToContainTextAsync("not valid UTF-8");

            // An edit made in hex is released as those bytes.
            await content.FillAsync("73 65 63 72 65 74 20 59");
            await encoding.SelectOptionAsync("base64");
            await Expect(content).ToHaveValueAsync("c2VjcmV0IFk=");
            await Expect(card.Locator(".encoding-error")).ToHaveCountAsync(0);
            await card.Locator("button[type=submit]").ClickAsync();
            await Eventually.AssertAsync(() => server.Texts.Contains("secret Y"), "the echo peer got the edited message");
            await Expect(page.Locator(".held-card")).ToHaveCountAsync(0);
        }
        finally
        {
            await App.ResetAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Message_and_close_times_are_local_like_the_flow_list_with_utc_in_the_title()
    {
        await App.ResetAsync();
        var (client, _, flow) = await App.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("what time is it");
            await client.ReceiveTextAsync();
            await client.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye");
        }

        // India is UTC+05:30 all year: no time of day there reads the same as in UTC.
        var page = await browser.NewPageAsync("Asia/Kolkata");
        static string Local(string ts, string format) =>
            DateTimeOffset.FromUnixTimeMilliseconds((long)(double.Parse(ts, System.Globalization.CultureInfo.InvariantCulture) * 1000))
                .ToOffset(TimeSpan.FromHours(5.5)).ToString(format, System.Globalization.CultureInfo.InvariantCulture);

        async Task ExpectLocalAsync(ILocator time, string format)
        {
            var ts = await time.GetAttributeAsync("data-ts");
            Assert.NotNull(ts);
            await Expect(time).ToHaveTextAsync(Local(ts, format));
            await Expect(time).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$"));
        }

        await page.GotoAsync(browser.BaseUrl + "/");
        await ExpectLocalAsync(page.Locator($"tr.flow-row[data-id='{flow.Id}'] time"), "HH:mm:ss");

        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("#close-info")).ToBeVisibleAsync();
        Assert.DoesNotContain("UTC", await page.Locator("#close-info").InnerTextAsync(), StringComparison.Ordinal);
        await ExpectLocalAsync(page.Locator("#close-info time"), "HH:mm:ss.fff");

        await page.ClickAsync("#message-rows tr[data-index='0']");
        var header = page.Locator("#message-view .message-content time");
        await Expect(header).ToHaveCountAsync(1);
        Assert.DoesNotContain("UTC", await page.Locator("#message-view .message-content").InnerTextAsync(), StringComparison.Ordinal);
        await ExpectLocalAsync(header, "HH:mm:ss.fff");

        await page.ClickAsync("#tab-connection");
        await ExpectLocalAsync(page.Locator("#pane-connection time").First, "HH:mm:ss.fff");
    }
}
