using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The onboarding page shows client TLS handshakes as they happen: a failed one makes no flow to look at.</summary>
[Collection("dashboard-browser")]
public sealed class OnboardingBrowserTests(DashboardBrowser browser) : IClassFixture<DashboardBrowser>
{
    [RequiresChromiumFact]
    public async Task A_client_that_refuses_the_ca_shows_up_on_the_open_page_with_why()
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{browser.BaseUrl}/onboarding");
        await Expect(page.Locator("#client-tls")).ToBeVisibleAsync();
        var host = $"refuses-{Guid.NewGuid():N}.example";

        // A real TLS client in a CONNECT tunnel that does not trust the WsWeb CA: it gives up after the handshake.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, browser.App.ProxyPort);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n"));
            var answer = new byte[64];
            Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(answer, 0, await stream.ReadAsync(answer)), StringComparison.Ordinal);
            await using var tls = new SslStream(stream, leaveInnerStreamOpen: true, (_, _, _, _) => false);
            await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = host }));
        }

        // Without a reload: the page reads the box again while it is open.
        var row = page.Locator("#client-tls-failures tbody tr", new() { HasText = host });
        await Expect(row).ToContainTextAsync("does not trust the WsWeb CA");
        await Expect(page.Locator("#client-tls .badge.text-bg-warning")).ToContainTextAsync("failed");
        await DashboardBrowser.ScreenshotAsync(page, "onboarding-client-tls");

        var health = await ApiAssert.JsonAsync(await browser.App.Api.GetAsync("/healthz"));
        Assert.True(health.GetProperty("clientTls").GetProperty("failed").GetInt64() >= 1);
    }
}
