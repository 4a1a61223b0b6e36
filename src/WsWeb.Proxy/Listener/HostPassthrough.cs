using System.Text.RegularExpressions;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Which CONNECT tunnels WsWeb passes through untouched, as mitmproxy's <c>ignore_hosts</c> and <c>allow_hosts</c>:
/// each pattern is searched (case-insensitively) in the tunnel's <c>host:port</c>. A client that pins its server's
/// certificate fails against any interceptor; passed through, it talks to its server as if WsWeb were not there,
/// and WsWeb records nothing of it.
/// </summary>
internal sealed class HostPassthrough
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);
    private readonly Regex[] _ignore;
    private readonly Regex[] _allow;

    public HostPassthrough(ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ignore = [.. options.IgnoreHosts.Select(Compile)];
        _allow = [.. options.AllowHosts.Select(Compile)];
    }

    /// <summary>Whether a tunnel to <paramref name="host"/>:<paramref name="port"/> is passed through instead of intercepted.</summary>
    public bool PassesThrough(string host, int port)
    {
        if (_ignore.Length == 0 && _allow.Length == 0)
        {
            return false;
        }

        var address = $"{host}:{port}";
        return _allow.Length > 0 ? !Any(_allow, address) : Any(_ignore, address);
    }

    /// <summary>Why <paramref name="pattern"/> is no regular expression, or null when it is one.</summary>
    public static string? Problem(string pattern)
    {
        try
        {
            _ = Compile(pattern);
            return null;
        }
        catch (ArgumentException ex)
        {
            return $"'{pattern}' is not a regular expression: {ex.Message}";
        }
    }

    private static Regex Compile(string pattern) => new(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, MatchTimeout);

    private static bool Any(Regex[] patterns, string address)
    {
        foreach (var pattern in patterns)
        {
            try
            {
                if (pattern.IsMatch(address))
                {
                    return true;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                // A pattern too slow to decide counts as no match: the tunnel is intercepted, as it would be without it.
            }
        }

        return false;
    }
}
