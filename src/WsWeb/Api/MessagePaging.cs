
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Intercept;

namespace WsWeb.Api;

/// <summary>A window of a flow's messages for the detail page.</summary>
/// <param name="Cursor">Index of the last message looked at (pass as <c>after</c> to read on), or -1.</param>
/// <param name="MoreBefore">Whether older messages than the first row may exist.</param>
public sealed record MessageWindow(IReadOnlyList<MessageView> Rows, long Cursor, bool MoreBefore);

/// <summary>
/// Reads windows of messages for the detail page: the newest <c>limit</c> before a cursor (scrolling up)
/// or those after a cursor (live catch-up with a filter). Keeps the page usable at 100k messages: a
/// browser only ever holds a few pages of rows.
/// </summary>
/// <remarks>
/// Filters run in <see cref="FilterMode.Query"/> mode: a regex that times out throws
/// <see cref="FilterTimeoutException"/>, and the cancellation token (the request's
/// <c>RequestAborted</c>) stops the scan once nobody waits for the answer.
/// </remarks>
internal static class MessagePaging
{
    public const int PageSize = 200;
    private const int ScanChunk = 512;

    public static MessageWindow Before(HttpFlow flow, HoldResolutions resolutions, FlowFilter? filter, long? before, int limit = PageSize, CancellationToken cancellationToken = default)
    {
        if (flow.WebSocket is not { } ws)
        {
            return new MessageWindow([], -1, false);
        }

        var total = ws.TotalCount;
        var first = ws.TrimmedCount;
        var cursor = total - 1;
        var rows = new List<MessageView>(limit);

        // Walk back in chunks from the cursor, so paging a 100k-message flow copies only what it reads.
        var next = Math.Min(before ?? total, total);
        while (rows.Count < limit && next > first)
        {
            var from = Math.Max(first, next - ScanChunk);
            var chunk = ws.Snapshot(from, (int)(next - from));
            if (chunk.Count == 0)
            {
                break;
            }

            for (var i = chunk.Count - 1; i >= 0 && rows.Count < limit; i--)
            {
                next = chunk[i].Index;
                if (filter is null || filter.Matches(flow, chunk[i], FilterMode.Query, cancellationToken))
                {
                    rows.Add(MessageView.From(chunk[i], resolutions.Get(chunk[i])));
                }
            }
        }

        rows.Reverse();
        return new MessageWindow(rows, cursor, next > ws.TrimmedCount);
    }

    public static MessageWindow After(HttpFlow flow, HoldResolutions resolutions, FlowFilter? filter, long after, int limit = PageSize, CancellationToken cancellationToken = default)
    {
        if (flow.WebSocket is not { } ws)
        {
            return new MessageWindow([], after, false);
        }

        var rows = new List<MessageView>();
        var cursor = after;

        // Copy the list in chunks: a filtered page of a 100k-message flow must not copy all of it at once.
        // No index can follow long.MaxValue, and cursor + 1 would wrap to the start of the flow.
        while (rows.Count < limit && cursor < long.MaxValue)
        {
            var chunk = ws.Snapshot(cursor + 1, ScanChunk);
            if (chunk.Count == 0)
            {
                break;
            }

            foreach (var message in chunk)
            {
                cursor = message.Index;
                if (filter is null || filter.Matches(flow, message, FilterMode.Query, cancellationToken))
                {
                    rows.Add(MessageView.From(message, resolutions.Get(message)));
                    if (rows.Count == limit)
                    {
                        break;
                    }
                }
            }
        }

        return new MessageWindow(rows, cursor, false);
    }
}
