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
    private long _relayTimeouts;
    private int _firstRelayTimeoutTaken;

    private FlowFilter(string expression, FilterNode root)
    {
        Expression = expression;
        _root = root;
    }

    /// <summary>The expression as it was given.</summary>
    public string Expression { get; }

    /// <exception cref="FilterParseException">The expression is invalid, or past a limit (4096 characters, 100 terms,
    /// 100 levels of nesting); the exception carries the position.</exception>
    public static FlowFilter Parse(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        return new FlowFilter(expression, FilterParser.Parse(expression));
    }

    /// <summary>Parses without throwing; a null expression is reported like an empty one, and the limits apply as in <see cref="Parse"/>.</summary>
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
    /// How many regex matches of <see cref="FilterMode.Relay"/> evaluations ran past the match timeout and were
    /// counted as no match. The owner of a rule or intercept filter can log the first one: the pattern needs fixing.
    /// </summary>
    public long RelayTimeouts => Interlocked.Read(ref _relayTimeouts);

    /// <summary>True once, for the first caller after a relay timeout: who owns the filter logs it then, not per message.</summary>
    public bool TakeFirstRelayTimeout() => RelayTimeouts > 0 && Interlocked.Exchange(ref _firstRelayTimeoutTaken, 1) == 0;

    /// <summary>
    /// Tests a flow. Message operators (<c>~wq</c>, <c>~text</c>, <c>~json</c>…) are true when any retained
    /// message of the flow satisfies them, each operator on its own, as mitmproxy's <c>~b</c> does.
    /// A regex that times out counts as no match (<see cref="FilterMode.Relay"/>).
    /// </summary>
    public bool Matches(HttpFlow flow) => Matches(flow, FilterMode.Relay);

    /// <summary>Tests a flow as <see cref="Matches(HttpFlow)"/> does, in the given mode.</summary>
    /// <exception cref="FilterTimeoutException">A regex timed out in <see cref="FilterMode.Query"/> mode.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled, checked as
    /// evaluation starts and every few messages while it scans a flow's messages.</exception>
    public bool Matches(HttpFlow flow, FilterMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flow);
        cancellationToken.ThrowIfCancellationRequested();
        return _root.Matches(flow, new FilterEvaluation(this, mode, cancellationToken));
    }

    /// <summary>
    /// Tests one message of <paramref name="flow"/>: message operators test <paramref name="message"/>,
    /// <c>~b</c>/<c>~bq</c>/<c>~bs</c> test its content, and every other operator tests the flow.
    /// A regex that times out counts as no match (<see cref="FilterMode.Relay"/>).
    /// </summary>
    public bool Matches(HttpFlow flow, WebSocketMessage message) => Matches(flow, message, FilterMode.Relay);

    /// <summary>Tests one message as <see cref="Matches(HttpFlow, WebSocketMessage)"/> does, in the given mode.</summary>
    /// <exception cref="FilterTimeoutException">A regex timed out in <see cref="FilterMode.Query"/> mode.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public bool Matches(HttpFlow flow, WebSocketMessage message, FilterMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flow);
        ArgumentNullException.ThrowIfNull(message);
        cancellationToken.ThrowIfCancellationRequested();
        return _root.Matches(flow, message, new FilterEvaluation(this, mode, cancellationToken));
    }

    internal void NoteRelayTimeout() => Interlocked.Increment(ref _relayTimeouts);

    public override string ToString() => Expression;
}
