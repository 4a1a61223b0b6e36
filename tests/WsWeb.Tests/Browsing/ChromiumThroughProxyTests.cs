using System.Diagnostics;
using Microsoft.Playwright;
using WsWeb.Core.Flows;
using WsWeb.Tests.Dashboard;
using WsWeb.Tests.Infrastructure;
using WsWeb.Tests.Shared;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Browsing;

/// <summary>
/// The real host, a site on 127.0.0.1, and headless Debian Chromium set to use the proxy, trusting the proxy's CA
/// the way a user does on Linux: the CA downloaded from the web listener and added to the browser's NSS database
/// with certutil (libnss3-tools). No certificate errors are ignored.
/// </summary>
public sealed class ChromiumThroughProxy : IAsyncLifetime
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "wsweb-chromium-home-" + Guid.NewGuid().ToString("N"));
    private IPlaywright? _playwright;

    public WsWebApp App { get; } = new();

    internal BrowsingSite Site { get; private set; } = null!;

    public IBrowser? Browser { get; private set; }

    public async Task InitializeAsync()
    {
        await App.InitializeAsync();
        Site = await BrowsingSite.StartAsync();
        if (!ExternalTools.RequireAll && !(ExternalTools.IsAvailable("chromium") && ExternalTools.IsAvailable("certutil")))
        {
            return; // the tests are skipped
        }

        // The user's steps: download the CA, add it to the browser's certificate store as a trusted CA.
        var caPath = Path.Combine(_home, "wsweb-ca.pem");
        Directory.CreateDirectory(_home);
        await File.WriteAllBytesAsync(caPath, await App.Api.GetByteArrayAsync(new Uri("/cert/pem", UriKind.Relative)));
        var database = "sql:" + Path.Combine(_home, ".pki", "nssdb");
        Directory.CreateDirectory(Path.Combine(_home, ".pki", "nssdb"));
        await CertutilAsync("-N", "-d", database, "--empty-password");
        await CertutilAsync("-A", "-d", database, "-t", "C,,", "-n", "WsWeb test CA", "-i", caPath);

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = RequiresChromiumFactAttribute.ChromiumPath,
            Headless = true,
            Env = new Dictionary<string, string> { ["HOME"] = _home },

            // Playwright adds <-loopback> to the bypass list, so 127.0.0.1 goes through the proxy too.
            Proxy = new() { Server = App.ProxyUri.ToString() },
            Args = DashboardBrowser.LaunchArgs,
        });
    }

    private static async Task CertutilAsync(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("certutil", arguments) { RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("certutil did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(process.ExitCode == 0, $"certutil {string.Join(' ', arguments)} failed: {await output}{await error}");
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        await Site.DisposeAsync();
        await App.DisposeAsync();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// What a user of the proxy does first: browse. A page, its script, a fetch with a JSON body and the page's own
/// WebSocket all go through the proxy, over plain HTTP and through TLS interception, and every one is recorded.
/// In the dashboard's collection, so two Chromiums never share the two cores.
/// </summary>
[Collection("dashboard-browser")]
public sealed class ChromiumThroughProxyTests(ChromiumThroughProxy fixture) : IClassFixture<ChromiumThroughProxy>
{
    private WsWebApp App => fixture.App;

    [RequiresToolFact("chromium", "certutil")]
    public Task Https_page_and_its_wss_WebSocket_work_through_the_proxy_trusting_its_CA() =>
        BrowseAsync($"https://127.0.0.1:{fixture.Site.HttpsPort}/", tls: true);

    [RequiresToolFact("chromium", "certutil")]
    public Task Http_page_and_its_ws_WebSocket_work_through_the_proxy() =>
        BrowseAsync($"http://127.0.0.1:{fixture.Site.HttpPort}/", tls: false);

    private async Task BrowseAsync(string url, bool tls)
    {
        Assert.NotNull(fixture.Browser);
        var port = new Uri(url).Port;
        await using var context = await fixture.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout((float)DashboardBrowser.Wait.TotalMilliseconds);

        var response = await page.GotoAsync(url);
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        if (tls)
        {
            // Chromium accepted the leaf the proxy minted, because it chains to the CA the user added.
            var security = await response.SecurityDetailsAsync();
            Assert.NotNull(security);
            Assert.Contains("WsWeb", security.Issuer, StringComparison.Ordinal);
        }

        var log = page.Locator("#log");
        await Expect(page.Locator("body[data-state='echoed']")).ToBeAttachedAsync();
        await Expect(log).ToContainTextAsync("""fetch 200 {"got":{"from":"chromium","n":42}}""");
        await Expect(log).ToContainTextAsync("text hello from chromium");
        await Expect(log).ToContainTextAsync("binary 0,1,2,255");

        await page.ClickAsync("#close");
        await Expect(page.Locator("body[data-state='closed']")).ToBeAttachedAsync();
        await Expect(log).ToContainTextAsync("closed 4001 bye");

        // Everything the page did is recorded, with the scheme the browser used.
        var scheme = tls ? "https" : "http";
        List<HttpFlow> Flows() => App.Store.Query(f => f.Request.Port == port && f.Request.Host == "127.0.0.1");
        await Eventually.AssertAsync(() => Flows().Any(f => f.WebSocket?.CloseCode is not null), "the WebSocket flow is closed");
        var flows = Flows();

        var document = Assert.Single(flows, f => f.Request is { Method: "GET", Path: "/" });
        Assert.Equal(scheme, document.Request.Scheme);
        Assert.Equal(200, document.Response?.StatusCode);
        Assert.Equal(tls, document.ClientConn.TlsEstablished);
        Assert.Equal(tls, document.ServerConn.TlsEstablished);
        Assert.Contains(flows, f => f.Request is { Method: "GET", Path: "/app.js" } && f.Response?.StatusCode == 200);
        var post = Assert.Single(flows, f => f.Request is { Method: "POST", Path: "/api/echo" });
        Assert.Equal("""{"from":"chromium","n":42}""", System.Text.Encoding.UTF8.GetString(post.Request.Content ?? []));
        Assert.Equal("""{"got":{"from":"chromium","n":42}}""", System.Text.Encoding.UTF8.GetString(post.Response?.Content ?? []));

        var socket = Assert.Single(flows, f => f.IsWebSocket).WebSocket!;
        var messages = socket.Messages.Select(m => (m.FromClient, m.IsText, Content: Convert.ToHexString(m.Content))).ToList();
        var hello = Convert.ToHexString("hello from chromium"u8);
        Assert.Equal(
            [(true, true, hello), (true, false, "000102FF"), (false, true, hello), (false, false, "000102FF")],
            messages.OrderBy(m => !m.FromClient).ToList());
        Assert.True(socket.ClosedByClient);
        Assert.Equal(4001, socket.CloseCode);
        Assert.Equal("bye", socket.CloseReason);
    }
}
