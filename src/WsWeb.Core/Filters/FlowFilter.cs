using System.Diagnostics.CodeAnalysis;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Filters;

/// <summary>
/// A compiled mitmproxy-style filter expression (<c>~websocket &amp; ~wq ~json $.type == "auth"</c>),
/// evaluated on flows or on single WebSocket messages. See <c>docs/filters.md</c> for the language.
/// </summary>
/// <remarks>
/// Parsing compiles the expression once into a tree of nodes with cached regexes; evaluation is
/// thread-safe and allocation-free in the common case, so one instance can serve every relay thread.
/// </remarks>
public sealed class FlowFilter
{
    private readonly FilterNode _root;

    private FlowFilter(string expression, FilterNode root)
    {
        Expression = expression;
        _root = root;
    }

    /// <summary>The expression as it was given.</summary>
    public string Expression { get; }

    /// <exception cref="FilterParseException">The expression is invalid; the exception carries the position.</exception>
    public static FlowFilter Parse(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        return new FlowFilter(expression, FilterParser.Parse(expression));
    }

    /// <summary>Parses without throwing; a null expression is reported like an empty one.</summary>
    public static bool TryParse(
        string? expression,
        [NotNullWhen(true)] out FlowFilter? filter,
        [NotNullWhen(false)] out FilterParseError? error)
    {
        try
        {
            filter = new FlowFilter(expression ?? "", FilterParser.Parse(expression ?? ""));
            error = null;
            return true;
        }
        catch (FilterParseException e)
        {
            filter = null;
            error = e.Error;
            return false;
        }
    }

    /// <summary>
    /// Tests a flow. Message operators (<c>~wq</c>, <c>~text</c>, <c>~json</c>…) are true when any retained
    /// message of the flow satisfies them, each operator on its own, as mitmproxy's <c>~b</c> does.
    /// </summary>
    public bool Matches(HttpFlow flow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        return _root.Matches(flow);
    }

    /// <summary>
    /// Tests one message of <paramref name="flow"/>: message operators test <paramref name="message"/>,
    /// <c>~b</c>/<c>~bq</c>/<c>~bs</c> test its content, and every other operator tests the flow.
    /// </summary>
    public bool Matches(HttpFlow flow, WebSocketMessage message)
    {
        ArgumentNullException.ThrowIfNull(flow);
        ArgumentNullException.ThrowIfNull(message);
        return _root.Matches(flow, message);
    }

    public override string ToString() => Expression;
}
