using System.Text.RegularExpressions;
using WsWeb.Core.Filters;

namespace WsWeb.Proxy.Rewriting;

/// <summary>
/// mitmproxy's option syntax for map_remote, modify_headers and block_list: the first character separates the parts,
/// and a leading flow filter is optional where mitmproxy makes it so (<c>|~d example.com|a|b</c> or <c>|a|b</c>).
/// </summary>
internal static class RewriteSpec
{
    /// <summary>How long a map-remote regex may search one URL: a pattern that backtracks for ever must not stall a request.</summary>
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(250);

    /// <summary>The largest spec accepted: these come from the command line, and a filter is bounded anyway.</summary>
    private const int MaxLength = 8192;

    /// <exception cref="FormatException">The spec is not <c>[/filter]/regex/replacement</c>; the message says why.</exception>
    public static MapRemoteSpec MapRemote(string spec)
    {
        var (filter, subject, replacement) = FilterSubjectValue(spec, "[/flow-filter]/url-regex/replacement, e.g. |https://example\\.com/|http://127.0.0.1:3000/ (the URL matched is the http(s) form)");
        Regex pattern;
        try
        {
            pattern = new Regex(subject, RegexOptions.CultureInvariant, RegexTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"'{subject}' is not a regular expression: {ex.Message}");
        }

        return new MapRemoteSpec(filter, pattern, replacement);
    }

    /// <exception cref="FormatException">The spec is not <c>[/filter]/name/value</c>; the message says why.</exception>
    public static ModifyHeaderSpec ModifyHeader(string spec)
    {
        var (filter, name, value) = FilterSubjectValue(spec, "[/flow-filter]/name/value, e.g. /~q/Origin/https://example.com (an empty value removes the header)");
        if (name.Length == 0 || !name.All(IsTokenChar))
        {
            throw new FormatException($"'{name}' is not a header name (letters, digits and !#$%&'*+-.^_`|~ only).");
        }

        if (value.StartsWith('@'))
        {
            // mitmproxy reads such a value from a file; taken literally it would send the path instead.
            throw new FormatException($"a value from a file ('{value}') is not supported; give the value itself.");
        }

        if (value.Any(c => (c < ' ' && c != '\t') || c == '\x7f'))
        {
            // RFC 9110 §5.5: Kestrel refuses to send such a value, which would fail every response the spec matches.
            throw new FormatException("a header value cannot contain control characters (a tab aside).");
        }

        return new ModifyHeaderSpec(filter, name, value);
    }

    /// <exception cref="FormatException">The spec is not <c>/filter/status</c>; the message says why.</exception>
    public static BlockSpec Block(string spec)
    {
        var parts = Split(spec, "/flow-filter/status, e.g. /~d ads.example/404 (444 closes the connection without an answer)");
        if (parts.Length != 2)
        {
            throw new FormatException($"it has {parts.Length} part{(parts.Length == 1 ? "" : "s")} after its separator '{spec[0]}', and a block-list entry has 2: /flow-filter/status, e.g. /~d ads.example/404.");
        }

        var filter = Filter(parts[0]);
        if (!int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status)
            || status is < 200 or > 599)
        {
            throw new FormatException($"'{parts[1]}' is not an HTTP status WsWeb can answer with (200–599), or 444 to close the connection without an answer.");
        }

        return new BlockSpec(filter, status);
    }

    private static (FlowFilter Filter, string Subject, string Value) FilterSubjectValue(string spec, string shape)
    {
        var parts = Split(spec, shape);
        return parts.Length switch
        {
            2 => (Filter("~all"), parts[0], parts[1]),
            3 => (Filter(parts[0]), parts[1], parts[2]),
            _ => throw new FormatException($"it has {parts.Length} part{(parts.Length == 1 ? "" : "s")} after its separator '{spec[0]}', and needs 2 or 3: {shape}."),
        };
    }

    /// <summary>The parts after the separator (the spec's first character); the last part keeps any further separators, as in mitmproxy.</summary>
    private static string[] Split(string spec, string shape)
    {
        if (spec.Length < 2)
        {
            throw new FormatException($"'{spec}' is too short: {shape}.");
        }

        if (spec.Length > MaxLength)
        {
            throw new FormatException($"it is {spec.Length} characters long; at most {MaxLength} are accepted.");
        }

        if (char.IsLetterOrDigit(spec[0]) || char.IsWhiteSpace(spec[0]))
        {
            throw new FormatException($"its first character '{spec[0]}' is the separator of its parts and should be a punctuation mark such as / or |: {shape}.");
        }

        return spec[1..].Split(spec[0], 3);
    }

    private static FlowFilter Filter(string expression) =>
        FlowFilter.TryParse(expression, out var filter, out var error)
            ? filter
            : throw new FormatException($"the flow filter '{expression}' does not parse: {error.Message}");

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);
}

/// <summary>A URL rewrite (mitmproxy's map_remote): matching requests go to the rewritten URL instead.</summary>
internal sealed record MapRemoteSpec(FlowFilter Filter, Regex Pattern, string Replacement);

/// <summary>A header set or removed (mitmproxy's modify_headers): an empty <see cref="Value"/> removes it.</summary>
internal sealed record ModifyHeaderSpec(FlowFilter Filter, string Name, string Value);

/// <summary>A request answered by WsWeb with <see cref="Status"/> instead of being forwarded (mitmproxy's block_list).</summary>
internal sealed record BlockSpec(FlowFilter Filter, int Status)
{
    /// <summary>nginx's "no response": the connection is closed without an answer, as mitmproxy does for it.</summary>
    public const int NoResponse = 444;
}
