namespace WsWeb.Core.Filters;

/// <summary>
/// Thrown by a <see cref="FilterMode.Query"/> evaluation when one of the expression's regexes ran past its
/// match timeout: the pattern backtracks catastrophically on the traffic it searched and must be simplified.
/// </summary>
/// <remarks>A <see cref="TimeoutException"/> so generic handlers still see what happened.</remarks>
public sealed class FilterTimeoutException : TimeoutException
{
    public FilterTimeoutException()
        : this("a regex of the filter timed out")
    {
    }

    public FilterTimeoutException(string message)
        : base(message)
    {
        Operator = "";
        Pattern = "";
    }

    public FilterTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operator = "";
        Pattern = "";
    }

    internal FilterTimeoutException(FilterRegex regex, Exception innerException)
        : base(
            $"{regex.Operator} regex \"{regex.Pattern}\" at position {regex.Position} timed out after "
            + $"{RegexCache.MatchTimeout.TotalMilliseconds:0} ms: it is too slow on this traffic (catastrophic backtracking, "
            + "e.g. nested or overlapping repetition such as (a|aa)+ or (a+)+). Simplify the regex.",
            innerException)
    {
        Operator = regex.Operator;
        Pattern = regex.Pattern;
        Position = regex.Position;
        Length = regex.Length;
    }

    /// <summary>The operator whose regex timed out, e.g. <c>~b</c> or <c>~json ~=</c>.</summary>
    public string Operator { get; }

    /// <summary>The regex as written in the expression (quotes removed).</summary>
    public string Pattern { get; }

    /// <summary>0-based character offset of the regex in the expression, for highlighting as parse errors do.</summary>
    public int Position { get; }

    /// <summary>Length of the regex in the expression, quotes included.</summary>
    public int Length { get; }
}
