using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// The real host (<see cref="WsWebApp"/>: proxy, dashboard, echo peer) and one headless Debian Chromium driven
/// by Playwright's .NET API (its bundled node driver; no browser download). One per test class.
/// </summary>
public sealed class DashboardBrowser : IAsyncLifetime
{
    private IPlaywright? _playwright;

    // Playwright's assertions wait 5 s by default; a page is "live" only once it has subscribed and caught up over
    // REST, which takes far longer than that on a 2-core machine busy with other builds (seen: 10-20 s at a load
    // average of 25). A longer wait only delays the report of a real failure.
    static DashboardBrowser() => Assertions.SetDefaultExpectTimeout((float)Wait.TotalMilliseconds);

    public DashboardBrowser()
        : this(new WsWebApp())
    {
    }

    /// <summary>A browser on a host set up otherwise (other hub bounds, another clock for the hub).</summary>
    internal DashboardBrowser(WsWebApp app) => App = app;

    public WsWebApp App { get; private set; }

    public IBrowser Browser { get; private set; } = null!;

    public string BaseUrl => $"http://127.0.0.1:{App.WebPort}";

    /// <summary>
    /// How long a browser test waits for one step: an assertion, a page action (navigation, a wait for a response), or
    /// what a page's request makes happen on the server. The same for all of them, since each is as slow as the busy
    /// machine it runs on.
    /// </summary>
    public static TimeSpan Wait { get; } = TimeSpan.FromSeconds(30);

    /// <summary>Headless Debian Chromium as every browser test runs it: no sandbox, GPU, QUIC or background traffic.</summary>
    public static IReadOnlyList<string> LaunchArgs { get; } =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    ];

    /// <summary>Where screenshots go: TestResults/dashboard-screenshots beside the test assembly.</summary>
    public static string ArtifactsDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "dashboard-screenshots");

    public async Task InitializeAsync()
    {
        await App.InitializeAsync();
        if (!File.Exists(RequiresChromiumFactAttribute.ChromiumPath))
        {
            return; // the tests are skipped (or, with WSWEB_REQUIRE_ALL=1, fail on the missing browser below)
        }

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = RequiresChromiumFactAttribute.ChromiumPath,
            Headless = true,
            Args = LaunchArgs,
        });
    }

    /// <summary>A fresh page at 1366×768, the smallest laptop screen the dashboard must fit.</summary>
    public Task<IPage> NewPageAsync() => NewPageAsync(timezoneId: null);

    /// <summary>A fresh page as <see cref="NewPageAsync()"/>, in the given IANA time zone (null: the machine's).</summary>
    public async Task<IPage> NewPageAsync(string? timezoneId)
    {
        if (Browser is null)
        {
            throw new InvalidOperationException($"Chromium is required at {RequiresChromiumFactAttribute.ChromiumPath} (apt-get install chromium).");
        }

        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1366, Height = 768 }, TimezoneId = timezoneId });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout((float)Wait.TotalMilliseconds);
        return page;
    }

    /// <summary>Stops the host as Ctrl+C does; the browser and its pages stay open.</summary>
    internal Task StopAppAsync() => App.DisposeAsync();

    /// <summary>Starts a new host on the stopped one's web port: WsWeb after a restart (empty store, new hub).</summary>
    internal async Task StartAppAsync()
    {
        var webPort = App.WebPort;
        App = new WsWebApp(options => options with { WebPort = webPort });
        await App.InitializeAsync();
    }

    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ArtifactsDirectory);
        var path = Path.Combine(ArtifactsDirectory, name + ".png");
        await page.ScreenshotAsync(new() { Path = path });
        Console.WriteLine($"screenshot: {path}");
        return path;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        await App.DisposeAsync();
    }
}
