using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Filters;

/// <summary>One compiled piece of an expression. Nodes are immutable and shared across threads.</summary>
internal abstract class FilterNode
{
    public abstract bool Matches(HttpFlow flow, in FilterEvaluation evaluation);

    public abstract bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation);

    /// <summary>True if any retained message of the flow satisfies <paramref name="predicate"/>.</summary>
    protected static bool AnyMessage<TState>(HttpFlow flow, TState state, MessagePredicate<TState> predicate, in FilterEvaluation evaluation)
    {
        var ws = flow.WebSocket;
        if (ws is null)
        {
            return false;
        }

        // Absolute indices through Find: no snapshot copy per evaluation, and messages trimmed
        // meanwhile are simply skipped. Messages recorded after we started are not looked at.
        var end = ws.TotalCount;
        for (var i = ws.TrimmedCount; i < end; i++)
        {
            // A query over a 100k-message flow must stop soon after its client leaves.
            evaluation.ThrowIfCancellationRequested(i);
            var message = ws.Find(i);
            if (message is not null && predicate(state, message, evaluation))
            {
                return true;
            }
        }

        return false;
    }

    protected delegate bool MessagePredicate<in TState>(TState state, WebSocketMessage message, in FilterEvaluation evaluation);
}

/// <summary>A test of the flow alone; on a message it tests the message's flow.</summary>
internal abstract class FlowNode : FilterNode
{
    public sealed override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation) => Matches(flow, evaluation);
}

/// <summary>A test of one message; on a flow it asks whether any message passes.</summary>
internal abstract class MessageNode : FilterNode
{
    public sealed override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) =>
        AnyMessage(flow, this, static (MessageNode self, WebSocketMessage message, in FilterEvaluation e) => self.Matches(message, e), evaluation);

    public sealed override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation) => Matches(message, evaluation);

    protected abstract bool Matches(WebSocketMessage message, in FilterEvaluation evaluation);
}

internal sealed class AndNode(FilterNode[] items) : FilterNode
{
    internal IReadOnlyList<FilterNode> Items => items;

    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation)
    {
        foreach (var item in items)
        {
            if (!item.Matches(flow, evaluation))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation)
    {
        foreach (var item in items)
        {
            if (!item.Matches(flow, message, evaluation))
            {
                return false;
            }
        }

        return true;
    }
}

internal sealed class OrNode(FilterNode[] items) : FilterNode
{
    internal IReadOnlyList<FilterNode> Items => items;

    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation)
    {
        foreach (var item in items)
        {
            if (item.Matches(flow, evaluation))
            {
                return true;
            }
        }

        return false;
    }

    public override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation)
    {
        foreach (var item in items)
        {
            if (item.Matches(flow, message, evaluation))
            {
                return true;
            }
        }

        return false;
    }
}

internal sealed class NotNode(FilterNode inner) : FilterNode
{
    internal FilterNode Inner => inner;

    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) => !inner.Matches(flow, evaluation);

    public override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation) => !inner.Matches(flow, message, evaluation);
}

internal enum FlowCondition
{
    Always,
    Never,
    WebSocket,
    NoResponse,
    HasResponse,
    Error,
    Marked,
    Asset,
    Live,
    Imported,
    Replay,
    ReplayRequest,
    ReplayResponse,
}

/// <summary>The argument-less flow operators: ~all, ~websocket, ~q, ~s, ~e, ~marked, ~a, ~replay, ~live, ~imported…</summary>
internal sealed class FlowConditionNode(FlowCondition condition) : FlowNode
{
    internal FlowCondition Condition => condition;

    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) => condition switch
    {
        FlowCondition.Always => true,
        FlowCondition.WebSocket => flow.WebSocket is not null,
        FlowCondition.NoResponse => flow.Response is null,
        FlowCondition.HasResponse => flow.Response is not null,
        FlowCondition.Error => flow.Error is not null,
        FlowCondition.Marked => !string.IsNullOrEmpty(flow.Marked),
        FlowCondition.Asset => flow.Response is { } response && IsAsset(response.Headers),
        FlowCondition.Live => flow.IsLive,
        FlowCondition.Imported => flow.IsImported,

        // As mitmproxy: ~replay is any is_replay at all, not only the two kinds the others name.
        FlowCondition.Replay => flow.IsReplay is not null,
        FlowCondition.ReplayRequest => flow.IsReplay == "request",
        FlowCondition.ReplayResponse => flow.IsReplay == "response",
        _ => false,
    };

    // mitmproxy's asset list: scripts, CSS, images and fonts, searched (not anchored) in the response Content-Type.
    private static bool IsAsset(HeaderList headers)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            var (name, value) = headers[i];
            if (string.Equals(name, "content-type", StringComparison.OrdinalIgnoreCase)
                && (value.Contains("text/javascript", StringComparison.Ordinal)
                    || value.Contains("application/x-javascript", StringComparison.Ordinal)
                    || value.Contains("application/javascript", StringComparison.Ordinal)
                    || value.Contains("text/css", StringComparison.Ordinal)
                    || value.Contains("image/", StringComparison.Ordinal)
                    || value.Contains("font/", StringComparison.Ordinal)
                    || value.Contains("application/font", StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Which text of a flow a regex operator searches (the flow-level operators of <see cref="FlowTextNode"/>).</summary>
internal enum FlowTextPart
{
    Url,
    Domain,
    Method,
    Source,
    Destination,
    Marker,
}

/// <summary>Regex operators over one piece of text of the flow: ~u, ~d, ~m, ~src, ~dst, ~marker.</summary>
internal sealed class FlowTextNode(FlowTextPart part, FilterRegex regex) : FlowNode
{
    internal FilterRegex Regex => regex;

    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) => part switch
    {
        FlowTextPart.Url => TextMatching.IsMatchUrl(regex, flow.Request, evaluation),
        FlowTextPart.Domain => TextMatching.IsMatchDomain(regex, flow.Request, evaluation),
        FlowTextPart.Method => TextMatching.IsMatch(regex, flow.Request.Method, evaluation),
        FlowTextPart.Source => TextMatching.IsMatchAddress(regex, flow.ClientConn.PeerName, evaluation),
        FlowTextPart.Destination => TextMatching.IsMatchAddress(regex, flow.ServerConn.Address, evaluation),
        FlowTextPart.Marker => TextMatching.IsMatch(regex, flow.Marked, evaluation),
        _ => false,
    };
}

[Flags]
internal enum Side
{
    Request = 1,
    Response = 2,
    Both = Request | Response,
}

/// <summary>~h, ~hq, ~hs: the header block of the request and/or response.</summary>
internal sealed class HeaderNode(Side side, FilterRegex regex) : FlowNode
{
    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) =>
        ((side & Side.Request) != 0 && TextMatching.IsMatchHeaders(regex, flow.Request.Headers, evaluation))
        || ((side & Side.Response) != 0 && flow.Response is { } response && TextMatching.IsMatchHeaders(regex, response.Headers, evaluation));
}

/// <summary>~t, ~tq, ~ts: the Content-Type value of the request and/or response.</summary>
internal sealed class ContentTypeNode(Side side, FilterRegex regex) : FlowNode
{
    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) =>
        ((side & Side.Request) != 0 && TextMatching.IsMatchContentType(regex, flow.Request.Headers, evaluation))
        || ((side & Side.Response) != 0 && flow.Response is { } response && TextMatching.IsMatchContentType(regex, response.Headers, evaluation));
}

/// <summary>
/// ~b, ~bq, ~bs. On a flow: the request and/or response body and the messages of that direction
/// (client messages count as request side), as mitmproxy. On a message: that message's content when
/// its direction fits; the HTTP bodies are not consulted.
/// </summary>
internal sealed class BodyNode(Side side, FilterRegex regex) : FilterNode
{
    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation)
    {
        // As mitmproxy: empty bodies are not searched (so ~b ^$ does not match them), others are searched decoded.
        if ((side & Side.Request) != 0 && flow.Request.Content is { Length: > 0 } requestBody
            && TextMatching.IsMatchContent(regex, ContentEncodings.DecodeForSearch(flow.Request.Headers["Content-Encoding"], requestBody), evaluation))
        {
            return true;
        }

        if ((side & Side.Response) != 0 && flow.Response is { Content: { Length: > 0 } responseBody } response
            && TextMatching.IsMatchContent(regex, ContentEncodings.DecodeForSearch(response.Headers["Content-Encoding"], responseBody), evaluation))
        {
            return true;
        }

        return AnyMessage(flow, this, static (BodyNode self, WebSocketMessage message, in FilterEvaluation e) => self.MatchesMessage(message, e), evaluation);
    }

    public override bool Matches(HttpFlow flow, WebSocketMessage message, in FilterEvaluation evaluation) => MatchesMessage(message, evaluation);

    private bool MatchesMessage(WebSocketMessage message, in FilterEvaluation evaluation) =>
        (side & (message.FromClient ? Side.Request : Side.Response)) != 0
        && TextMatching.IsMatchContent(regex, message.Content, evaluation);
}

/// <summary>~c: the response status code.</summary>
internal sealed class StatusCodeNode(int code) : FlowNode
{
    public override bool Matches(HttpFlow flow, in FilterEvaluation evaluation) => flow.Response?.StatusCode == code;
}

internal enum MessageCondition
{
    FromClient,
    FromServer,
    Text,
    Binary,
    Injected,
    Dropped,
    Edited,
}

/// <summary>~wq, ~ws, ~text, ~binary, ~injected, ~dropped, ~edited.</summary>
internal sealed class MessageConditionNode(MessageCondition condition) : MessageNode
{
    protected override bool Matches(WebSocketMessage message, in FilterEvaluation evaluation) => condition switch
    {
        MessageCondition.FromClient => message.FromClient,
        MessageCondition.FromServer => !message.FromClient,
        MessageCondition.Text => message.Type == Opcode.Text,
        MessageCondition.Binary => message.Type == Opcode.Binary,
        MessageCondition.Injected => message.Injected,
        MessageCondition.Dropped => message.Dropped,
        MessageCondition.Edited => message.IsModified,
        _ => false,
    };
}

internal enum SizeComparison
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// <summary>~size: the message content length in bytes.</summary>
internal sealed class SizeNode(SizeComparison comparison, long bytes) : MessageNode
{
    protected override bool Matches(WebSocketMessage message, in FilterEvaluation evaluation)
    {
        long length = message.Content.Length;
        return comparison switch
        {
            SizeComparison.Equal => length == bytes,
            SizeComparison.NotEqual => length != bytes,
            SizeComparison.Less => length < bytes,
            SizeComparison.LessOrEqual => length <= bytes,
            SizeComparison.Greater => length > bytes,
            SizeComparison.GreaterOrEqual => length >= bytes,
            _ => false,
        };
    }
}

/// <summary>~json: a path test on the message content parsed as JSON.</summary>
internal sealed class JsonNode(JsonQuery query) : MessageNode
{
    protected override bool Matches(WebSocketMessage message, in FilterEvaluation evaluation) => query.Matches(message.Content, evaluation);
}
