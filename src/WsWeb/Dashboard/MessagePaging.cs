using WsWeb.Api;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Intercept;

namespace WsWeb.Dashboard;

/// <summary>A window of a flow's messages for the detail page.</summary>
/// <param name="Cursor">Index of the last message looked at (pass as <c>after</c> to read on), or -1.</param>
/// <param name="MoreBefore">Whether older messages than the first row may exist.</param>
public sealed record MessageWindow(IReadOnlyList<MessageView> Rows, long Cursor, bool MoreBefore);

/// <summary>
/// Reads windows of messages for the detail page: the newest <c>limit</c> before a cursor (scrolling up)
/// or those after a cursor (live catch-up with a filter). Keeps the page usable at 100k messages: a
/// browser only ever holds a few pages of rows.
/// </summary>
internal static class MessagePaging
{
    public const int PageSize = 200;

    public static MessageWindow Before(HttpFlow flow, HoldResolutions resolutions, FlowFilter? filter, long? before, int limit = PageSize)
    {
        if (flow.WebSocket is not { } ws)
        {
            return new MessageWindow([], -1, false);
        }

        var all = ws.Snapshot();
        var cursor = all.Count > 0 ? all[^1].Index : -1;
        var rows = new List<MessageView>(Math.Min(limit, all.Count));
        var i = all.Count - 1;
        for (; i >= 0 && rows.Count < limit; i--)
        {
            var message = all[i];
            if (before is { } b && message.Index >= b)
            {
                continue;
            }

            if (filter is null || filter.Matches(flow, message))
            {
                rows.Add(MessageView.From(message, resolutions.Get(message)));
            }
        }

        rows.Reverse();
        return new MessageWindow(rows, cursor, i >= 0);
    }

    public static MessageWindow After(HttpFlow flow, HoldResolutions resolutions, FlowFilter? filter, long after, int limit = PageSize)
    {
        if (flow.WebSocket is not { } ws)
        {
            return new MessageWindow([], after, false);
        }

        var rows = new List<MessageView>();
        var cursor = after;
        foreach (var message in ws.Snapshot(after + 1))
        {
            cursor = message.Index;
            if (filter is null || filter.Matches(flow, message))
            {
                rows.Add(MessageView.From(message, resolutions.Get(message)));
                if (rows.Count == limit)
                {
                    break;
                }
            }
        }

        return new MessageWindow(rows, cursor, false);
    }
}
