using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Core;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Api;

/// <summary><c>GET /api/flows/{id}/activity</c>, on the flows group (<see cref="FlowsApi"/>).</summary>
internal static class ActivityApi
{
    public const int DefaultSlices = 100;
    public const int MaxSlices = 1000;

    public static RouteGroupBuilder MapActivity(this RouteGroupBuilder flows)
    {
        flows.MapGet("/{id}/activity", GetActivity)
            .WithName("GetFlowActivity")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("When a WebSocket flow's messages went: counts and bytes per direction in equal slices of its life.")
            .WithDescription("`slices` (default 100, at most 1000) cuts the time from the flow's start (or its oldest retained message) to its close (or now, while live) into equal slices; each counts messages and bytes (as recorded) each way, dropped and injected messages, and names its first message's index. `filter` counts only the messages it matches, e.g. `~b error`; a regex in it that times out is a 400 naming `filter`. Example: `GET /api/flows/{id}/activity?slices=60&filter=~wq`.");
        return flows;
    }

    private static Results<Ok<FlowActivity>, ValidationProblem, ProblemHttpResult> GetActivity(
        FlowStore store, TimeProvider time, string id, int? slices, string? filter, CancellationToken cancellationToken)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        if (slices is < 1 or > MaxSlices)
        {
            return ApiProblems.Invalid("slices", $"slices must be 1 to {MaxSlices}.");
        }

        if (!ApiProblems.TryParseFilter(filter, out var parsed, out var filterProblem))
        {
            return filterProblem;
        }

        if (flow.WebSocket is not { } ws)
        {
            return ApiProblems.NotWebSocket(id);
        }

        try
        {
            return TypedResults.Ok(MessageActivity.Measure(flow, ws, parsed, slices ?? DefaultSlices, Timestamps.Now(time), cancellationToken));
        }
        catch (FilterTimeoutException e)
        {
            return ApiProblems.FilterTooSlow(e);
        }
    }
}

/// <summary>Counts a flow's messages into time slices (<see cref="FlowActivity"/>).</summary>
internal static class MessageActivity
{
    private const int ScanChunk = 512;

    public static FlowActivity Measure(HttpFlow flow, WebSocketData ws, FlowFilter? filter, int sliceCount, double now, CancellationToken cancellationToken)
    {
        // Read the bounds before the messages: a message recorded meanwhile lands in the last slice, not past it.
        var trimmed = ws.TrimmedCount;
        var end = ws.TimestampEnd ?? now;
        var start = trimmed > 0 && ws.Find(trimmed) is { } oldest ? oldest.Timestamp : flow.TimestampCreated;
        // Clocks can disagree (an imported flow, a message stamped by a hook): a span of at least a millisecond.
        end = Math.Max(end, start + 0.001);
        var sliceSeconds = (end - start) / sliceCount;

        var slices = new Slice[sliceCount];
        long counted = 0;
        void Add(long index, double timestamp, int length, bool fromClient, bool dropped, bool injected)
        {
            var i = (int)Math.Clamp(Math.Floor((timestamp - start) / sliceSeconds), 0, sliceCount - 1);
            ref var slice = ref slices[i];
            if (slice.Count++ == 0)
            {
                slice.First = index;
            }

            if (fromClient)
            {
                slice.FromClient++;
                slice.BytesFromClient += length;
            }
            else
            {
                slice.FromServer++;
                slice.BytesFromServer += length;
            }

            slice.Dropped += dropped ? 1 : 0;
            slice.Injected += injected ? 1 : 0;
            counted++;
        }

        if (filter is null)
        {
            // Stamps only: no message content is touched, so watching a flow costs retention nothing.
            Span<MessageStamp> stamps = new MessageStamp[ScanChunk];
            for (var next = trimmed; ;)
            {
                var n = ws.CopyStamps(next, stamps);
                if (n == 0)
                {
                    break;
                }

                foreach (var s in stamps[..n])
                {
                    Add(s.Index, s.Timestamp, s.Length, s.FromClient, s.Dropped, s.Injected);
                }

                next = stamps[n - 1].Index + 1;
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        else
        {
            for (var next = trimmed; ;)
            {
                var chunk = ws.Snapshot(next, ScanChunk);
                if (chunk.Count == 0)
                {
                    break;
                }

                foreach (var m in chunk)
                {
                    if (filter.Matches(flow, m, FilterMode.Query, cancellationToken))
                    {
                        // The length as recorded, as the stamps have it: an edit does not change what the peer sent.
                        Add(m.Index, m.Timestamp, m.OriginalContent?.Length ?? m.Content.Length, m.FromClient, m.Dropped, m.Injected);
                    }
                }

                next = chunk[^1].Index + 1;
                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        var result = new ActivitySlice[sliceCount];
        for (var i = 0; i < sliceCount; i++)
        {
            var s = slices[i];
            result[i] = new ActivitySlice(s.FromClient, s.BytesFromClient, s.FromServer, s.BytesFromServer, s.Dropped, s.Injected, s.Count == 0 ? null : s.First);
        }

        return new FlowActivity(start, end, sliceSeconds, counted, trimmed, result);
    }

    private struct Slice
    {
        public long Count, First, FromClient, BytesFromClient, FromServer, BytesFromServer, Dropped, Injected;
    }
}
