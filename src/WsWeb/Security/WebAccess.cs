using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using WsWeb.Proxy;

namespace WsWeb.Security;

/// <summary>
/// Who may use the dashboard, REST API and hub. On loopback (the default) the web listener is open, as before:
/// only this machine reaches it. Shared with a team (<c>--web-host</c> another address), everything that shows or
/// changes captured traffic needs the secret, as in mitmweb: <c>--web-password</c>, or a random token made at each
/// start and printed with a sign-in link. Browsers sign in once and carry a cookie; scripts send
/// <c>Authorization: Bearer</c>.
/// </summary>
internal sealed partial class WebAccess
{
    public const string CookieName = "wsweb-auth";

    /// <summary>The query parameter of the printed sign-in link.</summary>
    public const string TokenParameter = "token";

    private readonly byte[]? _secretHash;
    private readonly byte[]? _cookieValue;

    private WebAccess(string? secret, bool generated)
    {
        if (secret is null)
        {
            return;
        }

        _secretHash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));

        // The cookie carries a value derived from the secret, never the secret itself.
        _cookieValue = Encoding.ASCII.GetBytes(WebEncoders.Base64UrlEncode(HMACSHA256.HashData(_secretHash, "wsweb dashboard session"u8)));
        GeneratedToken = generated ? secret : null;
    }

    /// <summary>False on loopback without a password: every request passes.</summary>
    public bool Required => _secretHash is not null;

    /// <summary>The token made at start when the listener is shared and no password was given, to print once.</summary>
    public string? GeneratedToken { get; }

    public string CookieValue => _cookieValue is null ? "" : Encoding.ASCII.GetString(_cookieValue);

    public static WebAccess Create(ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.WebPassword is { } password)
        {
            return new WebAccess(password, generated: false);
        }

        return IsLoopback(options.WebHost)
            ? new WebAccess(null, generated: false)
            : new WebAccess(WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(24)), generated: true);
    }

    /// <summary>Checks a presented password or token in constant time.</summary>
    public bool Accepts(string? presented) =>
        _secretHash is not null && presented is not null
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _secretHash);

    public bool AcceptsCookie(string? cookie) =>
        _cookieValue is not null && cookie is not null
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(cookie), _cookieValue);

    /// <summary>True when the request carries the bearer secret or the session cookie.</summary>
    public bool Allows(HttpRequest request)
    {
        if (!Required)
        {
            return true;
        }

        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Accepts(authorization["Bearer ".Length..].Trim()))
        {
            return true;
        }

        return AcceptsCookie(request.Cookies[CookieName]);
    }

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
