using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace WsWeb.Core.Filters;

/// <summary>
/// Shares compiled regexes between filters: the dashboard re-parses the same expressions on every
/// keystroke and every API call, and compiling a regex to IL costs far more than one evaluation.
/// </summary>
internal static class RegexCache
{
    /// <summary>A match taking longer than this counts as no match (guards against catastrophic backtracking).</summary>
    internal static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    private const int MaxEntries = 512;
    private static readonly ConcurrentDictionary<(string Pattern, RegexOptions Options), Regex> Cache = new();

    /// <exception cref="ArgumentException">The pattern is not a valid .NET regex.</exception>
    public static Regex Get(string pattern, RegexOptions options)
    {
        var key = (pattern, options | RegexOptions.Compiled | RegexOptions.CultureInvariant);
        if (Cache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var regex = new Regex(pattern, key.Item2, MatchTimeout);
        if (Cache.Count >= MaxEntries)
        {
            // Crude but bounded: user-typed patterns are unbounded, and a rebuild costs only compile time.
            Cache.Clear();
        }

        return Cache.GetOrAdd(key, regex);
    }
}
