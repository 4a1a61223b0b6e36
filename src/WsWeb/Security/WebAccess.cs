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
    /// <summary>The session cookie's name ends in the web port: cookies do not tell ports apart, and two WsWebs on one host must not overwrite each other's.</summary>
    public const string CookiePrefix = "wsweb-auth-";

    /// <summary>The query parameter of the printed sign-in link.</summary>
    public const string TokenParameter = "token";

    /// <summary>Wrong secrets one client address (an IPv6 /64) may send in a minute; one more, and it must wait.</summary>
    internal const int AttemptsPerMinute = 10;

    private const int MaxTrackedAddresses = 10_000;

    private static readonly TimeSpan AttemptWindow = TimeSpan.FromMinutes(1);

    private readonly byte[]? _secretHash;
    private readonly byte[]? _cookieValue;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<IPAddress, (int Count, DateTimeOffset Since)> _attempts = new();

    /// <summary>The wrong secrets each address sent in its current window (a fingerprint of each), to tell a retry from a guess.</summary>
    private readonly ConcurrentDictionary<IPAddress, WrongSecrets> _wrong = new();

    private WebAccess(string? secret, bool generated, int webPort, TimeProvider time)
    {
        _time = time;
        CookieName = CookiePrefix + webPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (secret is null)
        {
            return;
        }

        _secretHash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));

        // The cookie is keyed with a secret of this process, never derived from the password alone: a cookie
        // that leaks (a HAR of browsing through the proxy to another port of this host carries it) gives no
        // way to guess the password offline, and it stops working when WsWeb restarts.
        _cookieValue = Encoding.ASCII.GetBytes(WebEncoders.Base64UrlEncode(HMACSHA256.HashData(RandomNumberGenerator.GetBytes(32), _secretHash)));
        GeneratedToken = generated ? secret : null;
    }

    /// <summary>False on loopback without a password: every request passes.</summary>
    public bool Required => _secretHash is not null;

    /// <summary>The token made at start when the listener is shared and no password was given, to print once.</summary>
    public string? GeneratedToken { get; }

    public string CookieName { get; }

    public string CookieValue => _cookieValue is null ? "" : Encoding.ASCII.GetString(_cookieValue);

    public static WebAccess Create(ProxyOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        if (options.WebPassword is { } password)
        {
            return new WebAccess(password, generated: false, options.WebPort, time);
        }

        return ProxyOptions.IsLoopbackHost(options.WebHost)
            ? new WebAccess(null, generated: false, options.WebPort, time)
            : new WebAccess(WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(24)), generated: true, options.WebPort, time);
    }

    /// <summary>
    /// Takes one check from the address's allowance for this minute, atomically, so parallel requests get no
    /// more checks than the allowance between them: <see cref="AttemptsPerMinute"/> wrong secrets, and one more
    /// check after them (a right secret still gets in after exactly that many typos; one more wrong one is the
    /// last checked). Null once it is used up; a refusal takes nothing, so it does not hold the address off for
    /// longer. Otherwise the start of the window the check was taken from, to give it back to.
    /// </summary>
    private DateTimeOffset? TryTakeAttempt(IPAddress key)
    {
        var now = _time.GetUtcNow();
        if (_attempts.Count > MaxTrackedAddresses)
        {
            foreach (var (address, entry) in _attempts)
            {
                if (now - entry.Since >= AttemptWindow)
                {
                    _attempts.TryRemove(address, out _);
                }
            }

            if (_attempts.Count > MaxTrackedAddresses)
            {
                _attempts.Clear();   // bounded memory, against a flood from more networks than this
            }

            foreach (var address in _wrong.Keys)
            {
                if (!_attempts.ContainsKey(address))
                {
                    _wrong.TryRemove(address, out _);
                }
            }
        }

        while (true)
        {
            if (!_attempts.TryGetValue(key, out var entry))
            {
                if (_attempts.TryAdd(key, (1, now)))
                {
                    return now;
                }

                continue;
            }

            var taken = now - entry.Since >= AttemptWindow ? (Count: 1, Since: now) : (Count: entry.Count + 1, entry.Since);
            if (taken.Count > AttemptsPerMinute + 1)
            {
                return null;
            }

            if (_attempts.TryUpdate(key, taken, entry))
            {
                return taken.Since;
            }
        }
    }

    /// <summary>
    /// A right secret gives its check back: only wrong ones use up the allowance. Not to a later window, which
    /// started counting afresh without it.
    /// </summary>
    private void GiveBackAttempt(IPAddress key, DateTimeOffset window)
    {
        while (_attempts.TryGetValue(key, out var entry) && entry.Since == window)
        {
            if (_attempts.TryUpdate(key, (Math.Max(0, entry.Count - 1), entry.Since), entry))
            {
                return;
            }
        }
    }

    /// <summary>Addresses are counted per host, IPv6 per /64: one machine has a whole /64 to pick from.</summary>
    private static IPAddress? AttemptKey(IPAddress? client)
    {
        if (client is null)
        {
            return null;
        }

        if (client.IsIPv4MappedToIPv6)
        {
            return client.MapToIPv4();
        }

        if (client.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return client;
        }

        var bytes = client.GetAddressBytes();
        bytes.AsSpan(8).Clear();
        return new IPAddress(bytes);
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
    /// with more than <see cref="AttemptsPerMinute"/> wrong ones in the last minute is not checked at all until
    /// the minute is over. (Everyone behind that address waits too; a browser already signed in keeps its cookie.)
    /// </summary>
    public SecretCheck Check(string presented, IPAddress? client)
    {
        // Every check takes from the allowance before the secret is looked at, the right one too, and only a right
        // one gives it back afterwards. Looking first would make the throttle an oracle: a 429 for wrong guesses but
        // an answer for the right one tells a guesser which of its parallel guesses hit. The price is that a right
        // secret checked while wrong ones (or other right ones) are in flight shares what is left of the allowance
        // with them: a script firing many requests at once after a few typos sees some of them refused with 429.
        var key = AttemptKey(client);
        DateTimeOffset? window = null;
        if (key is not null && (window = TryTakeAttempt(key)) is null)
        {
            return SecretCheck.Throttled;
        }

        if (!Accepts(presented))
        {
            // The same wrong secret again is no new guess: a script or a tab retrying a token from before a restart.
            // It gives its check back, so it cannot lock everyone behind its address out; only different wrong
            // secrets use up the allowance, and those are what guessing takes.
            if (window is { } spent && _wrong.GetOrAdd(key!, _ => new WrongSecrets()).SeenBefore(spent, presented))
            {
                GiveBackAttempt(key!, spent);
            }

            return SecretCheck.Wrong;
        }

        if (window is { } taken)
        {
            GiveBackAttempt(key!, taken);
        }

        return SecretCheck.Accepted;
    }

    /// <summary>What the request's session cookie or bearer secret says; null when it carries neither.</summary>
    public SecretCheck? Check(HttpRequest request)
    {
        if (!Required || AcceptsCookie(request.Cookies[CookieName]))
        {
            return SecretCheck.Accepted;
        }

        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Check(authorization["Bearer ".Length..].Trim(), request.HttpContext.Connection.RemoteIpAddress);
        }

        // SignalR clients send their accessTokenFactory's token as a header on negotiate, but as ?access_token= on
        // the WebSocket and server-sent events transports (a browser cannot set headers there).
        return request.Path.StartsWithSegments("/hubs") && request.Query["access_token"] is [{ } token]
            ? Check(token, request.HttpContext.Connection.RemoteIpAddress)
            : null;
    }
}

internal enum SecretCheck
{
    Accepted,
    Wrong,

    /// <summary>Too many wrong secrets from this address in the last minute: answered 429 without checking.</summary>
    Throttled,
}

/// <summary>The wrong secrets one address sent in one attempt window, as fingerprints (never the secrets themselves).</summary>
internal sealed class WrongSecrets
{
    /// <summary>
    /// Keyed with a secret of this process, and 128 bits long: a guesser cannot make two guesses share a fingerprint
    /// offline, so that the second would pass as a repeat and cost nothing.
    /// </summary>
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);

    private readonly Lock _gate = new();
    private readonly HashSet<UInt128> _seen = [];
    private DateTimeOffset _window;

    /// <summary>Whether <paramref name="presented"/> was sent before in <paramref name="window"/>; remembers it if not.</summary>
    public bool SeenBefore(DateTimeOffset window, string presented)
    {
        var fingerprint = System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes(presented)));
        lock (_gate)
        {
            if (window != _window)
            {
                _window = window;
                _seen.Clear();
            }

            // At most as many as the allowance: each new one costs a check, and past the allowance none is checked.
            return !_seen.Add(fingerprint);
        }
    }
}
