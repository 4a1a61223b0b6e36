using System.Collections.Immutable;
using WsWeb.Api;
using WsWeb.Core.Flows;

namespace WsWeb.Hubs;

/// <summary>
/// Hub state for one flow: the connections subscribed to its messages, and its flow-list summary
/// cached per version so N dashboards watching the list compute it once per change, not N times
/// (<see cref="FlowSummary.From"/> walks every retained message).
/// </summary>
internal sealed class FlowRoute
{
    private ImmutableArray<ClientFeed> _subscribers = [];
    private long _version;
    private CachedSummary? _summary;

    /// <summary>Read on relay threads without a lock: the array is replaced, never changed.</summary>
    public ImmutableArray<ClientFeed> Subscribers => _subscribers;

    public void Add(ClientFeed feed) =>
        ImmutableInterlocked.Update(ref _subscribers, static (list, f) => list.Contains(f) ? list : list.Add(f), feed);

    public void Remove(ClientFeed feed) =>
        ImmutableInterlocked.Update(ref _subscribers, static (list, f) => list.Remove(f), feed);

    /// <summary>Called for every event of the flow, after the flow changed and before the event is queued anywhere.</summary>
    public void Touch() => Interlocked.Increment(ref _version);

    public FlowSummary Summary(HttpFlow flow)
    {
        // Read the version before looking at the flow: the summary then shows at least that version's
        // state, so labelling it with that version never serves an older state to a later reader.
        var version = Interlocked.Read(ref _version);
        var cached = Volatile.Read(ref _summary);
        if (cached is not null && cached.Version == version)
        {
            return cached.Summary;
        }

        var summary = FlowSummary.From(flow);
        Volatile.Write(ref _summary, new CachedSummary(version, summary));
        return summary;
    }

    private sealed record CachedSummary(long Version, FlowSummary Summary);
}
