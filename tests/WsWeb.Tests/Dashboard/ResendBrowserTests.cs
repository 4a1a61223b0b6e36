using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Playwright;
using WsWeb.Components.Shared;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// Burp's "edit and resend" on the flow page: a message's Resend (or "e" on its row) puts it in the Inject form, the same
/// way round, and sends nothing until the user presses Inject.
/// </summary>
[Collection("dashboard-browser")]
public sealed class ResendBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>, IAsyncLifetime
{
    private WsWebApp App => browser.App;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>The flow's page once it follows the flow live (the header is rendered again when the hub connects).</summary>
    private async Task<IPage> OpenFlowAsync(string flowId)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flowId}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        return page;
    }

    private static ILocator Row(IPage page, long index) => page.Locator($"#message-rows tr[data-index='{index}']");

    /// <summary>Shows message <paramref name="index"/> in the message view.</summary>
    private static async Task ShowAsync(IPage page, long index)
    {
        await Row(page, index).ClickAsync();
        await Expect(page.Locator($"#message-view .message-content[data-index='{index}']")).ToBeVisibleAsync();
    }

    private static ILocator Inject(IPage page, string name) => page.Locator($"#inject-form [name={name}]");

    [RequiresChromiumFact]
    public async Task A_client_text_message_goes_in_the_inject_form_toward_the_server_and_goes_out_only_as_edited_on_inject()
    {
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        const string original = """{"op":"buy","qty":1}""";
        const string edited = """{"op":"buy","qty":100}""";
        await client.SendTextAsync(original);
        Assert.Equal(original, await client.ReceiveTextAsync());

        var page = await OpenFlowAsync(flow.Id);
        await Expect(Row(page, 1)).ToBeVisibleAsync();
        await ShowAsync(page, 0);
        var resend = page.Locator("#message-resend");
        await Expect(resend).ToBeEnabledAsync();
        await Expect(page.Locator("#message-resend-wrap")).ToHaveAttributeAsync("title", MessageContent.ResendTitle);
        await resend.ClickAsync();

        // The message as it went, not as the view shows it (pretty JSON), in the form on the Actions tab, ready to edit.
        await Expect(Inject(page, "content")).ToHaveValueAsync(original);
        await Expect(Inject(page, "content")).ToBeFocusedAsync();
        await Expect(Inject(page, "toClient")).ToHaveValueAsync("false");
        await Expect(Inject(page, "type")).ToHaveValueAsync("text");
        await Expect(Inject(page, "encoding")).ToHaveValueAsync("utf8");
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Message #0. Edit it, then Inject.");
        await DashboardBrowser.ScreenshotAsync(page, "flow-resend");

        await Inject(page, "content").FillAsync(edited);
        await page.ClickAsync("#inject-form button[type=submit]");
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Injected");

        // The server got the original once (Resend sent nothing) and then the edit; the page lists it as injected.
        await Eventually.AssertAsync(() => server.Texts.Count() == 2, "the injection reached the server");
        Assert.Equal([original, edited], server.Texts);
        await Expect(Row(page, 2).Locator(".c-preview")).ToHaveTextAsync(edited);
        await Expect(Row(page, 2).Locator(".badge")).ToHaveTextAsync("injected");
        await Expect(Row(page, 2).Locator(".dir-out")).ToHaveCountAsync(1);
    }

    [RequiresChromiumFact]
    public async Task E_on_a_server_binary_message_puts_it_toward_the_client_in_hex_that_injects_the_same_bytes()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        byte[] bytes = [0x00, 0xff, 0x0d, 0x0a, 0x7f, 0xc3, 0x28];
        await client.SendBinaryAsync(bytes);
        Assert.Equal(bytes, (await client.ReceiveAsync()).Data); // the echo: message #1, server → client

        var page = await OpenFlowAsync(flow.Id);
        await Row(page, 1).FocusAsync();
        await page.Keyboard.PressAsync("e");

        await Expect(Inject(page, "content")).ToHaveValueAsync("00 ff 0d 0a 7f c3 28");
        await Expect(page.Locator("#message-view .message-content[data-index='1']")).ToHaveCountAsync(1); // shown, then the Actions tab
        await Expect(Inject(page, "toClient")).ToHaveValueAsync("true");
        await Expect(Inject(page, "type")).ToHaveValueAsync("binary");
        await Expect(Inject(page, "encoding")).ToHaveValueAsync("hex");
        await Expect(Inject(page, "content")).ToBeFocusedAsync();

        await page.ClickAsync("#inject-form button[type=submit]");
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Injected");
        var (type, data) = await client.ReceiveAsync(DashboardBrowser.Wait);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(bytes, data);
        await Expect(Row(page, 2).Locator(".badge")).ToHaveTextAsync("injected");
        await Expect(Row(page, 2).Locator(".dir-in")).ToHaveCountAsync(1);
    }

    [RequiresChromiumFact]
    public async Task Text_with_carriage_returns_goes_in_hex_and_text_larger_than_the_view_goes_in_whole()
    {
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        const string lines = "GET\r\nid:7\r\n\r\n";
        await client.SendTextAsync(lines);
        await client.ReceiveTextAsync();
        // More than the view shows (its first 256 KiB), less than the host's largest message (1 MiB).
        var large = string.Concat(Enumerable.Range(0, 40_000).Select(i => $"line {i,6}\n")).TrimEnd('\n') + "é";
        Assert.InRange(Encoding.UTF8.GetByteCount(large), 300_000, 1_000_000);
        await client.SendTextAsync(large);
        await client.ReceiveTextAsync();

        var page = await OpenFlowAsync(flow.Id);

        // A textarea turns CR LF into LF: the text goes in hex, which gives its bytes back as they are.
        await ShowAsync(page, 0);
        await page.ClickAsync("#message-resend");
        await Expect(Inject(page, "encoding")).ToHaveValueAsync("hex");
        await Expect(Inject(page, "type")).ToHaveValueAsync("text");
        await Expect(Inject(page, "content")).ToHaveValueAsync(string.Join(' ', Encoding.UTF8.GetBytes(lines).Select(b => b.ToString("x2", CultureInfo.InvariantCulture))));
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Message #0 in hex: its carriage returns would not survive the box as text. Edit it, then Inject.");
        await page.ClickAsync("#inject-form button[type=submit]");
        await Expect(page.Locator("#inject-form .action-result")).ToHaveTextAsync("Injected");
        await Eventually.AssertAsync(() => server.Texts.Count() == 3, "the injection reached the server");
        Assert.Equal(lines, server.Texts.Last());

        // The view shows only the start of the large one; the form gets all of it.
        await ShowAsync(page, 2);
        await Expect(page.Locator("#message-view")).ToContainTextAsync("Showing the first 256 KiB");
        await page.ClickAsync("#message-resend");
        await Expect(Inject(page, "encoding")).ToHaveValueAsync("utf8");
        await Expect(Inject(page, "content")).ToBeFocusedAsync();
        Assert.Equal(large, await Inject(page, "content").InputValueAsync());
    }

    [RequiresChromiumFact]
    public async Task Resend_is_disabled_saying_why_once_the_flow_ends_and_on_a_finished_flows_page()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("one");
        await client.ReceiveTextAsync();
        var page = await OpenFlowAsync(flow.Id);
        await ShowAsync(page, 0);
        await Expect(page.Locator("#message-resend")).ToBeEnabledAsync();

        // Ends while the page shows the message.
        using (var kill = await App.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
        }

        await Expect(page.Locator("#not-live-notice")).ToHaveCountAsync(1); // on the Actions tab
        await Expect(page.Locator("#message-resend")).ToBeDisabledAsync();
        await Expect(page.Locator("#message-resend-wrap")).ToHaveAttributeAsync("title", MessageContent.ClosedTitle);

        // Opened after it ended: rendered disabled, and "e" shows the message without filling the form.
        var finished = await browser.NewPageAsync();
        await finished.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await ShowAsync(finished, 1);
        await Row(finished, 0).FocusAsync();
        await finished.Keyboard.PressAsync("e");
        await Expect(finished.Locator("#message-view .message-content[data-index='0']")).ToBeVisibleAsync();
        await Expect(finished.Locator("#message-resend")).ToBeDisabledAsync();
        await Expect(finished.Locator("#message-resend-wrap")).ToHaveAttributeAsync("title", MessageContent.ClosedTitle);
        await Expect(Inject(finished, "content")).ToHaveValueAsync("");
        await Expect(finished.Locator("#inject-form .action-result")).ToHaveTextAsync("");
    }
}
