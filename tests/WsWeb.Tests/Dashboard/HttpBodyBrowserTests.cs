using System.IO.Compression;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Playwright;
using WsWeb.Core.Flows;
using WsWeb.Dashboard;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// Compressed HTTP bodies from a real server through the real proxy, on the flow page: decoded as mitmweb shows them,
/// the recorded bytes a click away, and the recorded bytes with why when they do not decode.
/// </summary>
[Collection("dashboard-browser")]
public sealed class HttpBodyBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>
{
    private static readonly string Page = string.Concat(Enumerable.Range(0, 200).Select(i => $"<li>item {i}: ünïcödé</li>\n"));

    private WsWebApp App => browser.App;

    [RequiresChromiumFact]
    public async Task Gzip_br_and_gzip_then_br_responses_show_decoded_text_and_the_recorded_bytes_on_request()
    {
        var text = Encoding.UTF8.GetBytes(Page);
        await using var upstream = await CodedServer.StartAsync();
        upstream.Bodies["gzip"] = ("gzip", Gzip(text));
        upstream.Bodies["br"] = ("br", Brotli(text));
        upstream.Bodies["both"] = ("gzip, br", Brotli(Gzip(text)));

        var page = await browser.NewPageAsync();
        foreach (var (name, label) in new[] { ("gzip", "gzip-decoded"), ("br", "br-decoded"), ("both", "gzip+br-decoded") })
        {
            var (flow, received) = await ThroughProxyAsync(upstream, name);
            var wire = upstream.Bodies[name].Body;
            Assert.Equal(wire, received); // the client gets the body as the server sent it: decoding is the page's alone

            await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
            var body = page.Locator("#http-response-body");
            await Expect(body.Locator(".http-body-decoded")).ToHaveTextAsync($"{label}, {Fmt.Bytes(wire.Length)} → {Fmt.Bytes(text.Length)}");
            Assert.Equal(Page, await body.Locator(":scope > pre.payload-text").TextContentAsync());
            await Expect(body.Locator(".http-body-problem")).ToHaveCountAsync(0);

            // The bytes as recorded: folded away, and there on a click.
            var raw = body.Locator("details.http-body-raw pre.payload-hex");
            await Expect(raw).ToBeHiddenAsync();
            await body.Locator("details.http-body-raw summary").ClickAsync();
            await Expect(raw).ToBeVisibleAsync();
            await Expect(raw).ToContainTextAsync($"00000000  {wire[0]:x2} {wire[1]:x2} ");
            if (name == "both")
            {
                await DashboardBrowser.ScreenshotAsync(page, "flow-http-decoded");
            }
        }
    }

    [RequiresChromiumFact]
    public async Task A_truncated_gzip_response_shows_its_recorded_bytes_and_why_instead_of_an_error()
    {
        var whole = Gzip(Encoding.UTF8.GetBytes(Page));
        await using var upstream = await CodedServer.StartAsync();
        upstream.Bodies["cut"] = ("gzip", whole[..(whole.Length - 10)]);

        var (flow, _) = await ThroughProxyAsync(upstream, "cut");
        var page = await browser.NewPageAsync();
        var response = await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        Assert.Equal(200, response!.Status);

        var body = page.Locator("#http-response-body");
        await Expect(body.Locator(".http-body-problem")).ToHaveTextAsync(
            "could not gzip-decode: the gzip stream is cut short or corrupt (its trailer does not match the data); shown as recorded.");
        await Expect(body.Locator(":scope > pre.payload-hex")).ToContainTextAsync("00000000  1f 8b");
        await Expect(body).ToContainTextAsync(new System.Text.RegularExpressions.Regex($@"Body:\s+{Fmt.Bytes(whole.Length - 10)}, binary, as hex"));
        await Expect(body.Locator(".http-body-decoded")).ToHaveCountAsync(0);
    }

    [RequiresChromiumFact]
    public async Task A_gzip_bomb_is_decoded_only_up_to_the_cap_and_the_page_says_so()
    {
        var bomb = new byte[64 * 1024 * 1024];
        bomb.AsSpan().Fill((byte)'a');
        var wire = Gzip(bomb);
        await using var upstream = await CodedServer.StartAsync();
        upstream.Bodies["bomb"] = ("gzip", wire);

        var (flow, _) = await ThroughProxyAsync(upstream, "bomb");
        Assert.Equal(wire, flow.Response!.Content); // recorded whole: the cap is the view's, not the recording's

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        var body = page.Locator("#http-response-body");
        await Expect(body.Locator(".http-body-decoded")).ToHaveTextAsync($"gzip-decoded, {Fmt.Bytes(wire.Length)} → more than 4 MiB");
        await Expect(body).ToContainTextAsync("Showing the first 256 KiB of 4 MiB; decoding stops there, and the body holds more.");
        Assert.Equal(Fmt.MaxViewBytes, (await body.Locator(":scope > pre.payload-text").TextContentAsync())!.Length);
    }

    [RequiresChromiumFact]
    public Task A_pending_flow_page_shows_the_response_head_when_it_arrives_and_the_body_once_it_has() => PendingFlowPageAsync(polling: false);

    [RequiresChromiumFact]
    public Task A_pending_flow_page_that_polls_shows_the_response_head_when_it_arrives_and_the_body_once_it_has() => PendingFlowPageAsync(polling: true);

    private async Task PendingFlowPageAsync(bool polling)
    {
        await using var upstream = await CodedServer.StartAsync();
        using var client = ProxiedClient();
        var (exchange, flow) = await SlowExchangeAsync(upstream, client);

        var page = await browser.NewPageAsync();
        if (polling)
        {
            // The hub cannot be reached (as behind a proxy that refuses it): the page reads the flow's header instead.
            await page.RouteAsync("**/hubs/flows/negotiate*", route => route.AbortAsync());
        }

        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("#http-no-response")).ToHaveTextAsync("No response yet.");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", polling ? "polling" : "hub");

        upstream.SendHead.SetResult();
        await Expect(page.Locator("#http-status-line")).ToHaveTextAsync("HTTP/1.1 200 OK");
        await Expect(page.Locator("#http-response-body")).ToContainTextAsync("Not recorded yet: bodies are, once they have gone through.");
        Assert.True(flow.IsLive);

        upstream.SendBody.SetResult();
        await exchange.WaitAsync(DashboardBrowser.Wait);
        await Expect(page.Locator("#http-response-body .http-body-decoded")).ToContainTextAsync("gzip-decoded");
        Assert.Equal(Page, await page.Locator("#http-response-body > pre.payload-text").TextContentAsync());
    }

    [RequiresChromiumFact]
    public async Task A_pending_exchange_is_killed_from_its_page_and_the_page_shows_why_it_ended()
    {
        await using var upstream = await CodedServer.StartAsync();
        using var client = ProxiedClient();
        var (exchange, flow) = await SlowExchangeAsync(upstream, client);   // its head never comes: SendHead is not set

        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/flows/{flow.Id}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "hub");
        await page.Locator("#kill-form button[type=submit]").ClickAsync();

        await Expect(page.Locator("#http-no-response")).ToHaveTextAsync("No response: Connection killed.");
        await Expect(page.Locator("#kill-form")).ToHaveCountAsync(0);
        Assert.False(flow.IsLive);
        await Assert.ThrowsAnyAsync<Exception>(() => exchange);
    }

    /// <summary>Starts a GET of /slow (a gzip page) through the proxy; the exchange under way and its recorded flow.</summary>
    private async Task<(Task<byte[]> Exchange, HttpFlow Flow)> SlowExchangeAsync(CodedServer upstream, HttpClient client)
    {
        upstream.Slow = ("gzip", Gzip(Encoding.UTF8.GetBytes(Page)));
        var tag = Guid.NewGuid().ToString("N");
        var exchange = client.GetByteArrayAsync(new Uri($"http://127.0.0.1:{upstream.Port}/slow?t={tag}"));
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = App.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal), take: 1).FirstOrDefault()) is not null, "the flow is recorded");
        return (exchange, flow!);
    }

    private HttpClient ProxiedClient() =>
        new(new HttpClientHandler { Proxy = new WebProxy(App.ProxyUri), UseProxy = true, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = DashboardBrowser.Wait,
        };

    /// <summary>GETs <paramref name="name"/> from <paramref name="upstream"/> through the proxy; the flow once it has ended.</summary>
    private async Task<(HttpFlow Flow, byte[] Received)> ThroughProxyAsync(CodedServer upstream, string name)
    {
        var tag = Guid.NewGuid().ToString("N");
        using var client = ProxiedClient();
        var received = await client.GetByteArrayAsync(new Uri($"http://127.0.0.1:{upstream.Port}/body/{name}?t={tag}"));
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = App.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal) && !f.IsLive, take: 1).FirstOrDefault()) is not null, "the flow ended");
        return (flow!, received);
    }

    private static byte[] Gzip(byte[] data) => Compression.Gzip(data, CompressionLevel.Fastest);

    private static byte[] Brotli(byte[] data) => Compression.Brotli(data);

    /// <summary>
    /// A real HTTP server (Kestrel) that answers /body/{name} with the bytes and Content-Encoding a test set, and /slow
    /// with a head once <see cref="SendHead"/> is set and its body once <see cref="SendBody"/> is.
    /// </summary>
    private sealed class CodedServer : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private CodedServer(WebApplication app) => _app = app;

        public int Port { get; private set; }

        public System.Collections.Concurrent.ConcurrentDictionary<string, (string Coding, byte[] Body)> Bodies { get; } = new();

        public (string Coding, byte[] Body) Slow { get; set; }

        public TaskCompletionSource SendHead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource SendBody { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<CodedServer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            var server = new CodedServer(app);
            app.MapGet("/body/{name}", async (HttpContext context, string name) =>
            {
                var (coding, body) = server.Bodies[name];
                context.Response.Headers.ContentEncoding = coding;
                context.Response.ContentType = "text/html; charset=utf-8";
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body);
            });
            app.MapGet("/slow", async (HttpContext context) =>
            {
                var (coding, body) = server.Slow;
                await server.SendHead.Task.WaitAsync(DashboardBrowser.Wait);
                context.Response.Headers.ContentEncoding = coding;
                context.Response.ContentType = "text/html; charset=utf-8";
                context.Response.ContentLength = body.Length;
                await context.Response.StartAsync();
                await context.Response.Body.FlushAsync();
                await server.SendBody.Task.WaitAsync(DashboardBrowser.Wait);
                await context.Response.Body.WriteAsync(body);
            });
            await app.StartAsync();
            server.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            SendHead.TrySetResult();
            SendBody.TrySetResult();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
