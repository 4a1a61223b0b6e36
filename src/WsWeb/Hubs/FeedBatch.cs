using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Hubs;

/// <summary>
/// Everything queued for one connection since its last send. Events are kept as references to the live
/// model and turned into DTOs only when sent, so queuing costs the relay thread no serialization.
/// </summary>
internal sealed class FeedBatch
{
    /// <summary>Flow-list entries, one per flow id: later events for the same flow coalesce into it.</summary>
    public Dictionary<string, FlowListEntry> FlowList { get; } = new(StringComparer.Ordinal);

    /// <summary>Flow-list updates discarded because the queue was full; non-zero means a "flows" gap.</summary>
    public long FlowListDropped { get; set; }

    /// <summary>Per subscribed flow: its new messages, changed messages, gap and close.</summary>
    public Dictionary<string, FlowBatch> Flows { get; } = new(StringComparer.Ordinal);

    public bool HeldChanged { get; set; }

    /// <summary>The intercept settings changed: InterceptChanged with the settings at send time.</summary>
    public bool InterceptChanged { get; set; }

    /// <summary>A rule was created, changed or removed: RulesChanged with the whole list at send time.</summary>
    public bool RulesChanged { get; set; }

    /// <summary>Rule counters moved: RuleHits with the counters that differ from what this connection was last sent.</summary>
    public bool RuleCounters { get; set; }

    /// <summary>Queued events counted against the capacity (messages, changes, flow-list entries).</summary>
    public int Count { get; set; }

    /// <summary>Content bytes of the queued messages.</summary>
    public long Bytes { get; set; }

    public void Clear()
    {
        FlowList.Clear();
        FlowListDropped = 0;
        Flows.Clear();
        HeldChanged = false;
        InterceptChanged = false;
        RulesChanged = false;
        RuleCounters = false;
        Count = 0;
        Bytes = 0;
    }
}

internal sealed class FlowListEntry(HttpFlow flow, FlowRoute route)
{
    public HttpFlow Flow { get; } = flow;

    public FlowRoute Route { get; } = route;

    public bool Closed { get; set; }

    public bool Removed { get; set; }
}

internal sealed class FlowBatch(HttpFlow flow)
{
    public HttpFlow Flow { get; } = flow;

    /// <summary>New messages in index order (the store publishes a flow's adds in index order).</summary>
    public List<QueuedMessage> Added { get; } = [];

    /// <summary>Changed messages by index: a message changed twice in one tick is sent once, in its latest state.</summary>
    public Dictionary<long, QueuedMessage>? Changed { get; set; }

    /// <summary>Where <paramref name="index"/> is in <see cref="Added"/>, or -1.</summary>
    public int FindAdded(long index)
    {
        // Adds are in index order, so a binary search: a flow can have thousands queued.
        int low = 0, high = Added.Count - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) / 2);
            var at = Added[middle].Message.Index;
            if (at == index)
            {
                return middle;
            }

            if (at < index)
            {
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return -1;
    }

    /// <summary>Lowest message index whose add or change was discarded; -1 when nothing was.</summary>
    public long GapCursor { get; set; } = -1;

    /// <summary>
    /// A change (not only adds) went into the gap. The client may already hold that message, read by its catch-up
    /// before the change, and nothing else would make it read it again: this batch's gap is sent even while one is open.
    /// </summary>
    public bool ChangeDiscarded { get; set; }

    public bool Closed { get; set; }

    public bool Removed { get; set; }
}

/// <summary>
/// A queued message and the content bytes it was counted at. Messages are sent in their state at send time, and an
/// edit can grow one after it was queued: the feed recounts on each change it hears of, and releases exactly what it
/// counted, so the byte count can neither drift nor go negative.
/// </summary>
internal readonly record struct QueuedMessage(WebSocketMessage Message, long Bytes)
{
    /// <summary>What a <see cref="Api.MessageView"/> of the message carries: its content and, once edited, the original.</summary>
    public static long BytesOf(WebSocketMessage message) => message.Content.Length + (message.OriginalContent?.Length ?? 0);
}
