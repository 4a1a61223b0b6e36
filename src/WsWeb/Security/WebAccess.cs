using System.Collections.Concurrent;
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

    /// <summary>Wrong secrets one client address may send per minute before it must wait (a guessed password).</summary>
    internal const int FailuresPerMinute = 10;

    private static readonly TimeSpan FailureWindow = TimeSpan.FromMinutes(1);

    private readonly byte[]? _secretHash;
    private readonly byte[]? _cookieValue;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<IPAddress, (int Count, DateTimeOffset Since)> _failures = new();

    private WebAccess(string? secret, bool generated, TimeProvider time)
    {
        _time = time;
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

    public static WebAccess Create(ProxyOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        if (options.WebPassword is { } password)
        {
            return new WebAccess(password, generated: false, time);
        }

        return IsLoopback(options.WebHost)
            ? new WebAccess(null, generated: false, time)
            : new WebAccess(WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(24)), generated: true, time);
    }

    /// <summary>True while <paramref name="client"/> has sent too many wrong secrets in the last minute.</summary>
    private bool IsThrottled(IPAddress? client) =>
        client is not null && _failures.TryGetValue(client, out var entry)
        && entry.Count >= FailuresPerMinute && _time.GetUtcNow() - entry.Since < FailureWindow;

    /// <summary>Counts a wrong password, token or bearer from <paramref name="client"/>.</summary>
    private void RecordFailure(IPAddress? client)
    {
        if (client is null)
        {
            return;
        }

        if (_failures.Count > 10_000)
        {
            _failures.Clear();   // bounded: a flood of addresses costs its attempts' memory, nothing more
        }

        var now = _time.GetUtcNow();
        _failures.AddOrUpdate(client, (1, now), (_, entry) => now - entry.Since >= FailureWindow ? (1, now) : (entry.Count + 1, entry.Since));
    }

    /// <summary>Checks a presented password or token in constant time.</summary>
    public bool Accepts(string? presented) =>
        _secretHash is not null && presented is not null
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _secretHash);

    public bool AcceptsCookie(string? cookie) =>
        _cookieValue is not null && cookie is not null
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(cookie), _cookieValue);

    /// <summary>
    /// Checks a presented password or token; a wrong one counts against the client's address, and an address
    /// with too many wrong ones in the last minute is not checked at all until the minute is over.
    /// </summary>
    public SecretCheck Check(string presented, IPAddress? client)
    {
        if (IsThrottled(client))
        {
            return SecretCheck.Throttled;
        }

        if (Accepts(presented))
        {
            return SecretCheck.Accepted;
        }

        RecordFailure(client);
        return SecretCheck.Wrong;
    }

    /// <summary>What the request's session cookie or bearer secret says; null when it carries neither.</summary>
    public SecretCheck? Check(HttpRequest request)
    {
        if (!Required || AcceptsCookie(request.Cookies[CookieName]))
        {
            return SecretCheck.Accepted;
        }

        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? Check(authorization["Bearer ".Length..].Trim(), request.HttpContext.Connection.RemoteIpAddress)
            : null;
    }

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}

internal enum SecretCheck
{
    Accepted,
    Wrong,

    /// <summary>Too many wrong secrets from this address in the last minute: answered 429 without checking.</summary>
    Throttled,
}
