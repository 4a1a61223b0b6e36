using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using WsWeb.Api;
using WsWeb.Core.Formats;
using WsWeb.Proxy;

namespace WsWeb.Security;

/// <summary>The sign-in gate of a shared web listener (<see cref="WebAccess"/>) and its sign-in page.</summary>
internal static partial class WebAccessEndpoints
{
    public const string SignInPath = "/signin";

    public const string SignOutPath = "/signout";

    /// <summary>Set on a 401 so the dashboard's script knows to send the user to the sign-in page.</summary>
    public const string SignInHeader = "X-WsWeb-Sign-In";

    // What a browser without the secret may still load: the sign-in page, its styles, liveness and the public CA
    // certificate (a teammate's phone needs it before it can do anything else). Signing out too: a cookie from
    // before a restart is no longer good, and its browser should still be able to drop it.
    private static readonly string[] OpenPaths = [SignInPath, SignOutPath, "/healthz", "/cert", "/css", "/lib"];

    // Answered with 401 and a problem detail: scripts, the hub, the dashboard's fragments and the API description.
    private static readonly string[] ApiPaths = ["/api", "/hubs", "/ui", "/openapi"];

    public static IServiceCollection AddWebAccess(this IServiceCollection services, ProxyOptions options) =>
        services.AddSingleton(WebAccess.Create(options));

    /// <summary>Runs after the web listener guard, so only the web listener's requests get here.</summary>
    public static WebApplication UseWebAccess(this WebApplication app)
    {
        var access = app.Services.GetRequiredService<WebAccess>();
        if (!access.Required)
        {
            return app;
        }

        if (access.GeneratedToken is { } token)
        {
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WebAccess));
            var options = app.Services.GetRequiredService<ProxyOptions>();
            app.Lifetime.ApplicationStarted.Register(() => LogGeneratedToken(logger, options.WebHost, SignInLink(options, token)));
        }

        app.Use((context, next) => GateAsync(context, next, access));
        return app;
    }

    /// <summary>
    /// Lets a request through with the session cookie or a right bearer secret (or to an open path); trades the printed
    /// link's token for the cookie; otherwise a 401 problem for scripts and a redirect to the sign-in page for browsers,
    /// or a 429 for an address that sent too many different wrong secrets.
    /// </summary>
    private static async Task GateAsync(HttpContext context, RequestDelegate next, WebAccess access)
    {
        var request = context.Request;
        if (OpenPaths.Any(path => request.Path.StartsWithSegments(path)))
        {
            await next(context);
            return;
        }

        var check = access.Check(request);

        // The printed link: trade the token for the cookie, then drop it from the address bar and history.
        var withoutToken = request.PathBase + request.Path + request.QueryString;
        if (request.Query.ContainsKey(WebAccess.TokenParameter))
        {
            withoutToken = LocalUrl(QueryHelpers.AddQueryString(
                request.PathBase + request.Path,
                request.Query.Where(p => p.Key != WebAccess.TokenParameter).SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)))));
            if (check == SecretCheck.Accepted && HttpMethods.IsGet(request.Method))
            {
                context.Response.Redirect(withoutToken);   // signed in already: the token still leaves the address bar
                return;
            }

            if (check is null && HttpMethods.IsGet(request.Method) && request.Query[WebAccess.TokenParameter] is [{ } presented])
            {
                check = access.Check(presented, context.Connection.RemoteIpAddress);
                if (check == SecretCheck.Accepted)
                {
                    SignIn(context, access);
                    context.Response.Redirect(withoutToken);
                    return;
                }

                // Most often a link printed before the last restart: the page says so, or it looks as if
                // the link just forgot to sign the user in.
                if (check == SecretCheck.Wrong)
                {
                    context.Response.Redirect(QueryHelpers.AddQueryString(SignInPath, new Dictionary<string, string?>
                    {
                        ["returnUrl"] = withoutToken,
                        [NoticeParameter] = StaleLinkNotice,
                    }));
                    return;
                }
            }
        }

        if (check == SecretCheck.Accepted)
        {
            await next(context);
            return;
        }

        if (check == SecretCheck.Throttled)
        {
            context.Response.Headers.RetryAfter = RetryAfterSeconds;
            await TooManyAttempts().ExecuteAsync(context);
            return;
        }

        context.Response.Headers[SignInHeader] = SignInPath;
        if (!HttpMethods.IsGet(request.Method) || ApiPaths.Any(path => request.Path.StartsWithSegments(path)))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"WsWeb\"";
            await ApiProblems.ForField(StatusCodes.Status401Unauthorized, "Sign-in required", "Authorization", "missing or wrong",
                detail: "This WsWeb is shared: send 'Authorization: Bearer <password>' (--web-password, or the token WsWeb printed at start), or sign in at " + SignInPath + ".")
                .ExecuteAsync(context);
            return;
        }

        context.Response.Redirect(QueryHelpers.AddQueryString(SignInPath, "returnUrl", withoutToken));
    }

    public static IEndpointRouteBuilder MapSignIn(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(SignInPath).ExcludeFromDescription();
        group.MapGet("/", (string? returnUrl, string? notice) => Page(LocalUrl(returnUrl), error: null, StatusCodes.Status200OK, NoticeText(notice)));

        // Read by hand rather than bound with [FromForm]: the page has no antiforgery token to send, and a
        // cross-site post is refused ahead of here by the web listener guard (a foreign Origin).
        group.MapPost("/", async Task<Results<RedirectHttpResult, RazorComponentResult<SignInPage>>> (HttpContext context, WebAccess access) =>
        {
            var form = context.Request.HasFormContentType ? await context.Request.ReadFormAsync(context.RequestAborted) : null;
            var returnUrl = LocalUrl(form?["returnUrl"].ToString());
            if (!access.Required)
            {
                return TypedResults.Redirect(returnUrl);
            }

            switch (access.Check(form?["password"].ToString() ?? "", context.Connection.RemoteIpAddress))
            {
                case SecretCheck.Wrong:
                    return Page(returnUrl, "Wrong password or token.", StatusCodes.Status401Unauthorized);
                case SecretCheck.Throttled:
                    context.Response.Headers.RetryAfter = RetryAfterSeconds;
                    return Page(returnUrl, "Too many wrong attempts from your address; wait a minute.", StatusCodes.Status429TooManyRequests);
            }

            SignIn(context, access);
            return TypedResults.Redirect(returnUrl);
        });

        // A form post, never a GET (a link or a prefetch must not sign anyone out), refused from another site's page
        // by the web listener guard like every write. The cookie is the same for every browser (one value per run),
        // so this only makes this browser forget it: the others stay signed in until WsWeb restarts.
        app.MapPost(SignOutPath, (HttpContext context, WebAccess access) =>
        {
            context.Response.Cookies.Delete(access.CookieName, CookieOptions(context));
            return TypedResults.Redirect(SignInPath);
        }).ExcludeFromDescription();
        return app;
    }

    private const string RetryAfterSeconds = "60";

    private static ProblemHttpResult TooManyAttempts() =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many wrong secrets",
            detail: $"More than {WebAccess.AttemptsPerMinute} wrong passwords or tokens came from your address in the last minute; wait a minute before trying again.");

    private const string NoticeParameter = "notice";

    private const string StaleLinkNotice = "stale-link";

    /// <summary>The page's notice for a <see cref="NoticeParameter"/> value; a name, so a crafted link cannot put its own words on the page.</summary>
    private static string? NoticeText(string? notice) => notice switch
    {
        StaleLinkNotice => "This sign-in link is no longer valid (WsWeb makes a new one at each start). Ask for the current link, or sign in with the password.",
        _ => null,
    };

    private static RazorComponentResult<SignInPage> Page(string returnUrl, string? error, int status, string? notice = null) =>
        new(new Dictionary<string, object?>
        {
            [nameof(SignInPage.ReturnUrl)] = returnUrl,
            [nameof(SignInPage.Error)] = error,
            [nameof(SignInPage.Notice)] = notice,
        }) { StatusCode = status };

    private static void SignIn(HttpContext context, WebAccess access)
    {
        var options = CookieOptions(context);
        options.MaxAge = TimeSpan.FromDays(30);
        context.Response.Cookies.Append(access.CookieName, access.CookieValue, options);
    }

    private static CookieOptions CookieOptions(HttpContext context) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = context.Request.IsHttps,
        Path = "/",
    };

    /// <summary>Only paths on this site: a sign-in link must not bounce the user to somebody else's page.</summary>
    internal static string LocalUrl(string? url) =>
        url is { Length: > 0 } && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\')) && !url.Any(char.IsControl)
            ? url
            : "/";

    internal static string SignInLink(ProxyOptions options, string token)
    {
        // 0.0.0.0 and :: are not addresses a teammate can type; the machine's name is.
        var host = options.WebHost is "0.0.0.0" or "::" ? System.Net.Dns.GetHostName() : options.WebHost;
        return $"http://{FlowText.JoinHostPort(host, options.WebPort)}/?{WebAccess.TokenParameter}={token}";
    }

    [LoggerMessage(1, LogLevel.Warning, "The dashboard and REST API on {WebHost} are reachable from other machines, so they need a secret. Sign in with {SignInLink} (scripts: Authorization: Bearer <token>). The token changes at every start; set --web-password for a fixed one.")]
    private static partial void LogGeneratedToken(ILogger logger, string webHost, string signInLink);
}
