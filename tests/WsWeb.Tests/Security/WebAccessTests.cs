using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using WsWeb.Proxy;
using WsWeb.Security;
using WsWeb.Tests.Dashboard;
using WsWeb.Tests.Infrastructure;
using WsWeb.Tests.Shared;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Security;

/// <summary>A WsWeb started with --web-password, as a team sharing one instance runs it.</summary>
public sealed class SharedWsWebApp : IAsyncLifetime
{
    public const string Password = "correct horse battery";

    internal WsWebApp App { get; } = new(options => options with { WebPassword = Password });

    /// <summary>Follows no redirects and keeps no cookies, so each test sees exactly what the server answered.</summary>
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await App.InitializeAsync();
        Http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{App.WebPort}"),
        };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await App.DisposeAsync();
    }
}

public sealed class WebAccessTests(SharedWsWebApp shared) : IClassFixture<SharedWsWebApp>
{
    private HttpClient Http => shared.Http;

    private static HttpRequestMessage Get(string url, string? bearer = null, string? cookie = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return request;
    }

    /// <summary>Signs in with the form and returns the cookie the browser would keep.</summary>
    private async Task<string> SignInAsync()
    {
        using var response = await Http.PostAsync(new Uri("/signin", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["password"] = SharedWsWebApp.Password,
            ["returnUrl"] = "/rules",
        }));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/rules", response.Headers.Location?.OriginalString);
        var setCookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith(WebAccess.CookiePrefix, setCookie, StringComparison.Ordinal);
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Uri.EscapeDataString(SharedWsWebApp.Password), setCookie, StringComparison.Ordinal);
        return setCookie[..setCookie.IndexOf(';', StringComparison.Ordinal)];
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong password here")]
    public async Task Api_without_the_secret_answers_401_with_a_problem_naming_Authorization(string? bearer)
    {
        using var response = await Http.SendAsync(Get("/api/flows", bearer));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("Sign-in required", problem.RootElement.GetProperty("title").GetString());
        Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty("Authorization", out _));
    }

    [Fact]
    public async Task Scripts_use_the_password_as_a_bearer_token()
    {
        using var flows = await Http.SendAsync(Get("/api/flows", SharedWsWebApp.Password));
        Assert.Equal(HttpStatusCode.OK, flows.StatusCode);

        // The hub and the API description are behind the same gate.
        using var negotiate = await Http.PostAsync(new Uri("/hubs/flows/negotiate?negotiateVersion=1", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Unauthorized, negotiate.StatusCode);
        using var openApi = await Http.SendAsync(Get("/openapi/v1.json"));
        Assert.Equal(HttpStatusCode.Unauthorized, openApi.StatusCode);
        using var openApiSigned = await Http.SendAsync(Get("/openapi/v1.json", SharedWsWebApp.Password));
        Assert.Equal(HttpStatusCode.OK, openApiSigned.StatusCode);
    }

    [Fact]
    public async Task A_script_reaches_the_hub_with_the_token_where_SignalR_puts_it_on_a_WebSocket()
    {
        var refused = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => WsWeb.Tests.Hubs.HubTestClient.ConnectAsync(shared.App.WebPort));
        Assert.Contains("401", refused.Message, StringComparison.Ordinal);

        await using var hub = await WsWeb.Tests.Hubs.HubTestClient.ConnectAsync(shared.App.WebPort, path: $"/hubs/flows?access_token={Uri.EscapeDataString(SharedWsWebApp.Password)}");
        await hub.InvokeAsync("SubscribeFlows");

        // Only on the hub: elsewhere a token in the query is not a credential.
        using var api = await Http.SendAsync(Get($"/api/flows?access_token={Uri.EscapeDataString(SharedWsWebApp.Password)}"));
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/cert/pem")]
    [InlineData("/signin")]
    [InlineData("/lib/bootstrap/css/bootstrap.min.css")]
    public async Task Liveness_the_CA_certificate_and_the_sign_in_page_stay_open(string path)
    {
        using var response = await Http.SendAsync(Get(path));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_page_without_the_secret_sends_the_browser_to_sign_in_and_back()
    {
        using var response = await Http.SendAsync(Get("/intercept?x=1"));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/signin?returnUrl=%2Fintercept%3Fx%3D1", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task The_printed_link_trades_its_token_for_the_cookie_and_drops_it_from_the_address()
    {
        using var response = await Http.SendAsync(Get($"/rules?token={Uri.EscapeDataString(SharedWsWebApp.Password)}&keep=1"));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/rules?keep=1", response.Headers.Location?.OriginalString);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        using var page = await Http.SendAsync(Get("/rules", cookie: cookie[..cookie.IndexOf(';', StringComparison.Ordinal)]));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Rules", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_link_never_sends_the_browser_off_this_site()
    {
        // Path "//evil.example/": a redirect to it would be scheme-relative, off to evil.example.
        using var response = await Http.SendAsync(Get($"{Http.BaseAddress}/evil.example/?token={Uri.EscapeDataString(SharedWsWebApp.Password)}"));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task A_signed_in_browser_opening_the_link_again_loses_the_token_from_its_address_bar()
    {
        var cookie = await SignInAsync();

        using var response = await Http.SendAsync(Get($"/rules?token={Uri.EscapeDataString(SharedWsWebApp.Password)}", cookie: cookie));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/rules", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task A_stale_or_wrong_link_signs_nobody_in_and_the_sign_in_page_says_why()
    {
        using var response = await Http.SendAsync(Get("/rules?token=from-before-the-restart&keep=1"));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
        var location = response.Headers.Location?.OriginalString;
        Assert.Equal("/signin?returnUrl=%2Frules%3Fkeep%3D1&notice=stale-link", location);

        using var page = await Http.SendAsync(Get(location!));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("This sign-in link is no longer valid (WsWeb makes a new one at each start)", html, StringComparison.Ordinal);
        Assert.Contains("value=\"/rules?keep=1\"", html, StringComparison.Ordinal);

        // Reached otherwise, the page has nothing to explain; and a link cannot make it say something else.
        using var plain = await Http.SendAsync(Get("/signin?notice=Your+session+expired%2C+enter+your+password+at+evil.example"));
        var plainHtml = await plain.Content.ReadAsStringAsync();
        Assert.DoesNotContain("signin-notice", plainHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", plainHtml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sign_in_form_sets_a_cookie_that_opens_pages_and_the_API()
    {
        var cookie = await SignInAsync();

        using var page = await Http.SendAsync(Get("/", cookie: cookie));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using var api = await Http.SendAsync(Get("/api/flows", cookie: cookie));
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);

        // A cookie is only good as the value WsWeb derived from the secret.
        var name = cookie[..cookie.IndexOf('=', StringComparison.Ordinal)];
        using var forged = await Http.SendAsync(Get("/api/flows", cookie: $"{name}={Uri.EscapeDataString(SharedWsWebApp.Password)}"));
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
    }

    [Fact]
    public async Task Signing_out_drops_the_cookie_and_only_a_browser_with_the_cookie_is_offered_it()
    {
        var cookie = await SignInAsync();
        using var withCookie = await Http.SendAsync(Get("/rules", cookie: cookie));
        Assert.Contains("id=\"sign-out\"", await withCookie.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var withBearer = await Http.SendAsync(Get("/rules", bearer: SharedWsWebApp.Password));
        Assert.Equal(HttpStatusCode.OK, withBearer.StatusCode);
        Assert.DoesNotContain("id=\"sign-out\"", await withBearer.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Another site's page cannot sign the user out (a foreign Origin on a write).
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "/signout");
        crossSite.Headers.Add("Cookie", cookie);
        crossSite.Headers.Add("Origin", "http://evil.example");
        using var refused = await Http.SendAsync(crossSite);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.False(refused.Headers.Contains("Set-Cookie"));

        using var signOut = new HttpRequestMessage(HttpMethod.Post, "/signout");
        signOut.Headers.Add("Cookie", cookie);
        signOut.Headers.Add("Origin", Http.BaseAddress!.GetLeftPart(UriPartial.Authority));
        using var response = await Http.SendAsync(signOut);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/signin", response.Headers.Location?.OriginalString);
        var deleted = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith(cookie[..(cookie.IndexOf('=', StringComparison.Ordinal) + 1)] + ";", deleted, StringComparison.Ordinal);
        Assert.Contains("expires=Thu, 01 Jan 1970", deleted, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", deleted, StringComparison.OrdinalIgnoreCase);

        // A cookie from before a restart is no longer good; its browser can still drop it, rather than get a 401.
        using var stale = new HttpRequestMessage(HttpMethod.Post, "/signout");
        stale.Headers.Add("Cookie", cookie[..(cookie.IndexOf('=', StringComparison.Ordinal) + 1)] + "from-the-last-run");
        using var staleResponse = await Http.SendAsync(stale);
        Assert.Equal(HttpStatusCode.Redirect, staleResponse.StatusCode);
    }

    [Fact]
    public async Task A_wrong_password_shows_the_form_again_with_the_error()
    {
        using var response = await Http.PostAsync(new Uri("/signin", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["password"] = "not it at all",
            ["returnUrl"] = "/rules",
        }));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("Wrong password or token.", html, StringComparison.Ordinal);
        Assert.Contains("value=\"/rules\"", html, StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Theory]
    [InlineData("/flows/abc?x=1", "/flows/abc?x=1")]
    [InlineData("/", "/")]
    [InlineData("//evil.example/", "/")]
    [InlineData("/\\evil.example/", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("", "/")]
    [InlineData(null, "/")]
    public void Sign_in_returns_only_to_paths_on_this_site(string? returnUrl, string expected) =>
        Assert.Equal(expected, WebAccessEndpoints.LocalUrl(returnUrl));

    [Fact]
    public async Task The_proxy_listener_needs_no_secret()
    {
        var (client, _, flow) = await shared.App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("through the shared proxy");

        Assert.Equal("through the shared proxy", await client.ReceiveTextAsync());
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 2, "both messages are recorded");
    }
}

/// <summary>A WsWeb started with --web-password, and the dashboard tests' Chromium to open it with.</summary>
public sealed class PasswordDashboardBrowser : IAsyncLifetime
{
    public DashboardBrowser Browser { get; } = new(new WsWebApp(options => options with { WebPassword = SharedWsWebApp.Password }));

    public Task InitializeAsync() => Browser.InitializeAsync();

    public Task DisposeAsync() => Browser.DisposeAsync();
}

/// <summary>Signing in from a browser. In the dashboard's collection, so two Chromiums never share the two cores.</summary>
[Collection("dashboard-browser")]
public sealed class WebAccessBrowserTests(PasswordDashboardBrowser fixture) : IClassFixture<PasswordDashboardBrowser>
{
    [RequiresChromiumFact]
    public async Task A_browser_signs_in_and_gets_live_updates()
    {
        var page = await fixture.Browser.NewPageAsync();
        var baseUrl = fixture.Browser.BaseUrl;

        await page.GotoAsync(baseUrl + "/");
        Assert.Equal(baseUrl + "/signin?returnUrl=%2F", page.Url);
        await page.FillAsync("#password", "wrong password here");
        await page.ClickAsync("button[type=submit]");
        await Expect(page.Locator("#password-error")).ToHaveTextAsync("Wrong password or token.");
        await DashboardBrowser.ScreenshotAsync(page, "signin-wrong-password");

        // The list is live once it has subscribed and read the flows after subscribing (its catch-up): a flow
        // started from then on reaches it through the hub.
        await page.FillAsync("#password", SharedWsWebApp.Password);
        await page.RunAndWaitForResponseAsync(
            () => page.ClickAsync("button[type=submit]"),
            response => response.Url.StartsWith(baseUrl + "/ui/flows/rows", StringComparison.Ordinal) && response.Ok);
        await Expect(page.Locator("#live-status")).ToHaveTextAsync("live");
        Assert.Equal(baseUrl + "/", page.Url);

        // The hub connected with the cookie: a new flow appears without reloading.
        var (client, _, flow) = await fixture.Browser.App.ConnectAsync();
        await using var c = client;
        await Expect(page.Locator($"tr.flow-row[data-id='{flow.Id}']")).ToBeVisibleAsync();
    }

    [RequiresChromiumFact]
    public async Task A_browser_signs_out_and_the_dashboard_sends_it_to_sign_in_again()
    {
        var page = await fixture.Browser.NewPageAsync();
        var baseUrl = fixture.Browser.BaseUrl;
        await page.GotoAsync(baseUrl + "/rules");
        await page.FillAsync("#password", SharedWsWebApp.Password);
        await page.ClickAsync("button[type=submit]");
        // Arrived is enough (the expectations below wait for what they look at): on a loaded machine the page's load
        // event, which waits for every script and style, once took longer than the 30 s this waits.
        await page.WaitForURLAsync(baseUrl + "/rules", new() { WaitUntil = Microsoft.Playwright.WaitUntilState.Commit });
        await DashboardBrowser.ScreenshotAsync(page, "signed-in-nav");

        await Expect(page.Locator("#sign-out")).ToHaveCSSAsync("color", "rgba(255, 255, 255, 0.55)");
        await page.ClickAsync("#sign-out");
        // The sign-out's own redirect, or, when a request of the page still open got its 401 first, the page's own way
        // to sign-in (with where it was): a loaded machine was seen to take the second.
        await page.WaitForURLAsync(new System.Text.RegularExpressions.Regex("^" + System.Text.RegularExpressions.Regex.Escape(baseUrl + "/signin") + @"(\?returnUrl=%2Frules)?$"));
        Assert.DoesNotContain(await page.Context.CookiesAsync(), c => c.Name.StartsWith(WebAccess.CookiePrefix, StringComparison.Ordinal));

        await page.GotoAsync(baseUrl + "/rules");
        Assert.Equal(baseUrl + "/signin?returnUrl=%2Frules", page.Url);
        await Expect(page.Locator("#password")).ToBeVisibleAsync();
    }
}

public sealed class WebAccessOptionsTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("localhost")]
    public void Loopback_without_a_password_stays_open(string webHost)
    {
        var access = WebAccess.Create(new ProxyOptions { WebHost = webHost });

        Assert.False(access.Required);
        Assert.Null(access.GeneratedToken);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("192.0.2.10")]
    public void A_shared_listener_without_a_password_gets_a_random_token_at_each_start(string webHost)
    {
        var first = WebAccess.Create(new ProxyOptions { WebHost = webHost });
        var second = WebAccess.Create(new ProxyOptions { WebHost = webHost });

        Assert.True(first.Required);
        Assert.NotNull(first.GeneratedToken);
        Assert.True(first.GeneratedToken.Length >= 32);
        Assert.NotEqual(first.GeneratedToken, second.GeneratedToken);
        Assert.True(first.Accepts(first.GeneratedToken));
        Assert.False(first.Accepts(second.GeneratedToken));
    }

    [Fact]
    public void A_password_is_required_everywhere_and_never_printed()
    {
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" });

        Assert.True(access.Required);
        Assert.Null(access.GeneratedToken);
        Assert.True(access.Accepts("a long secret"));
        Assert.False(access.Accepts("a long secreT"));
        Assert.DoesNotContain("a long secret", access.CookieValue, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_guesses_get_no_more_attempts_than_the_allowance()
    {
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" });
        var guesser = IPAddress.Parse("192.0.2.9");

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => access.Check($"guess {i}", guesser))));

        Assert.Equal(WebAccess.AttemptsPerMinute + 1, results.Count(r => r == SecretCheck.Wrong));
    }

    [Fact]
    public async Task Refused_checks_do_not_use_up_the_allowance()
    {
        // The review's repro: 9 typos, then a script's burst of right-bearer requests. Some are refused while the
        // others are checked (no oracle), but once the burst is over the address has exactly its 2 checks left.
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" });
        var script = IPAddress.Parse("192.0.2.10");
        for (var i = 0; i < WebAccess.AttemptsPerMinute - 1; i++)
        {
            Assert.Equal(SecretCheck.Wrong, access.Check($"typo {i}", script));
        }

        var burst = await Task.WhenAll(Enumerable.Range(0, 800).Select(_ => Task.Run(() => access.Check("a long secret", script))));

        Assert.DoesNotContain(SecretCheck.Wrong, burst);
        Assert.Contains(SecretCheck.Accepted, burst);
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", script));
        Assert.Equal(SecretCheck.Wrong, access.Check("typo 10", script));
        Assert.Equal(SecretCheck.Wrong, access.Check("typo 11", script));
        Assert.Equal(SecretCheck.Throttled, access.Check("a long secret", script));
    }

    [Fact]
    public void An_IPv6_guesser_cannot_step_around_the_limit_inside_its_own_64()
    {
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" });
        for (var i = 0; i <= WebAccess.AttemptsPerMinute; i++)
        {
            Assert.Equal(SecretCheck.Wrong, access.Check($"guess {i}", IPAddress.Parse($"2001:db8:1:2::{i + 1:x}")));
        }

        Assert.Equal(SecretCheck.Throttled, access.Check("a long secret", IPAddress.Parse("2001:db8:1:2:ffff::1")));
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", IPAddress.Parse("2001:db8:1:3::1")));
    }

    [Fact]
    public void A_cookie_is_good_for_one_run_of_one_instance_only()
    {
        var options = new ProxyOptions { WebPassword = "a long secret", WebPort = 9001 };
        var first = WebAccess.Create(options);
        var restarted = WebAccess.Create(options);

        Assert.False(restarted.AcceptsCookie(first.CookieValue));
        Assert.Equal("wsweb-auth-9001", first.CookieName);
    }

    [Theory]
    [InlineData("0.0.0.0", null)]
    [InlineData("192.0.2.10", "http://192.0.2.10:8081/?token=T")]
    [InlineData("2001:db8::1", "http://[2001:db8::1]:8081/?token=T")]
    public void The_printed_link_names_an_address_a_teammate_can_open(string webHost, string? expected)
    {
        var link = WebAccessEndpoints.SignInLink(new ProxyOptions { WebHost = webHost }, "T");

        Assert.Equal(expected ?? $"http://{Dns.GetHostName()}:8081/?token=T", link);
    }

    [Fact]
    public void The_same_stale_token_sent_again_and_again_is_no_new_guess_and_locks_nobody_out()
    {
        // A teammate's script polling with the token of the last run, twice a second: the right secret still gets in
        // from the same address, while different wrong ones still use up the allowance.
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" });
        var office = IPAddress.Parse("192.0.2.20");
        for (var i = 0; i < 150; i++)
        {
            Assert.Equal(SecretCheck.Wrong, access.Check("token of the last run", office));
        }

        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", office));
        for (var i = 0; i < WebAccess.AttemptsPerMinute - 1; i++)
        {
            Assert.Equal(SecretCheck.Wrong, access.Check($"guess {i}", office));
        }

        Assert.Equal(SecretCheck.Wrong, access.Check("guess 9", office));
        Assert.Equal(SecretCheck.Throttled, access.Check("a long secret", office));
    }

    [Fact]
    public void Too_many_wrong_secrets_from_one_address_lock_it_out_for_a_minute_only()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.Parse("2026-11-21T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var access = WebAccess.Create(new ProxyOptions { WebPassword = "a long secret" }, clock);
        var guesser = IPAddress.Parse("192.0.2.7");
        var colleague = IPAddress.Parse("192.0.2.8");

        for (var i = 0; i < WebAccess.AttemptsPerMinute; i++)
        {
            Assert.Equal(SecretCheck.Wrong, access.Check($"guess {i}", guesser));
        }

        // Exactly the allowance of typos: the right secret still gets in, and gives its check back.
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", guesser));
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", guesser));

        // One more wrong one is the last checked.
        Assert.Equal(SecretCheck.Wrong, access.Check("guess 10", guesser));

        // Locked: not even the right secret is checked, so guessing gains nothing. Other addresses are unaffected.
        Assert.Equal(SecretCheck.Throttled, access.Check("a long secret", guesser));
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", colleague));

        clock.Now += TimeSpan.FromSeconds(59);
        Assert.Equal(SecretCheck.Throttled, access.Check("a long secret", guesser));
        clock.Now += TimeSpan.FromSeconds(1);
        Assert.Equal(SecretCheck.Accepted, access.Check("a long secret", guesser));
    }
}

/// <summary>Its own host (class fixtures are per class), because locking 127.0.0.1 out would fail the other tests' requests.</summary>
public sealed class WebAccessThrottleTests(SharedWsWebApp shared) : IClassFixture<SharedWsWebApp>
{
    [Fact]
    public async Task A_guessing_client_gets_429_with_Retry_After_on_the_API_and_the_sign_in_form()
    {
        var http = shared.Http;
        for (var i = 0; i <= WebAccess.AttemptsPerMinute; i++)
        {
            if (i == WebAccess.AttemptsPerMinute)
            {
                // README: more than 10 wrong secrets are answered 429; 10 typos still leave room for the right one.
                using var right = new HttpRequestMessage(HttpMethod.Get, "/api/flows");
                right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", SharedWsWebApp.Password);
                using var accepted = await http.SendAsync(right);
                Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
            }

            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/flows");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", $"guess number {i}");
            using var wrong = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using var locked = new HttpRequestMessage(HttpMethod.Get, "/api/flows");
        locked.Headers.Authorization = new AuthenticationHeaderValue("Bearer", SharedWsWebApp.Password);
        using var api = await http.SendAsync(locked);
        Assert.Equal(HttpStatusCode.TooManyRequests, api.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(60), api.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);

        using var form = await http.PostAsync(new Uri("/signin", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["password"] = SharedWsWebApp.Password }));
        Assert.Equal(HttpStatusCode.TooManyRequests, form.StatusCode);
        Assert.Contains("Too many wrong attempts", await form.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(form.Headers.Contains("Set-Cookie"));
    }
}
