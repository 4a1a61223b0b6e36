using WsWeb.Api;
using WsWeb.Intercept;
using WsWeb.Rules;

namespace WsWeb.Hubs;

/// <summary>
/// What the server calls on a <c>/hubs/flows</c> client. The dashboard codes against these names and
/// payloads (camelCase JSON); docs/hub.md is the contract in prose.
/// </summary>
public interface IFlowsClient
{
    /// <summary>Flows started, updated or ended since the last batch, one entry per flow (latest state). Flow-list subscribers only.</summary>
    Task FlowsChanged(FlowSummary[] flows);

    /// <summary>Flows removed from the store (retention or a user's delete).</summary>
    Task FlowsRemoved(string[] flowIds);

    /// <summary>New messages of one flow in index order. Subscribers of that flow only.</summary>
    Task MessagesAdded(string flowId, MessageView[] messages);

    /// <summary>Messages of one flow that changed after they were added: held, released, edited, dropped.</summary>
    Task MessagesChanged(string flowId, MessageView[] messages);

    /// <summary>A WebSocket flow closed; <paramref name="killed"/> when a user killed it (no close frames were exchanged).</summary>
    Task FlowClosed(string flowId, bool? closedByClient, int? closeCode, string? closeReason, double? timestampEnd, bool killed);

    /// <summary>
    /// The full list of held messages, sent whenever it changes, with contents cut to previews (the body of
    /// GET /api/intercept/held?preview=true); an item's <see cref="HeldView.Truncated"/> says its content was cut.
    /// </summary>
    Task HeldChanged(HeldView[] held);

    /// <summary>
    /// How many messages are held, by flow id (flows with none left out), sent whenever the held list changes, to
    /// SubscribeInterceptCounts subscribers instead of <see cref="HeldChanged"/>.
    /// </summary>
    Task HeldCounts(Dictionary<string, int> heldByFlow);

    /// <summary>
    /// The intercept settings changed (someone set or cleared the filter, timeout or action): the state as
    /// GET /api/intercept answers it, with its <see cref="InterceptState.Version"/>. Intercept subscribers; one is sent
    /// at once on SubscribeIntercept. Several changes within one tick arrive as one, with the latest settings.
    /// </summary>
    Task InterceptChanged(InterceptState state);

    /// <summary>
    /// A rule was created, changed (edited, switched on or off) or removed: the whole list, in run order, as
    /// GET /api/rules answers it. Rules subscribers; one is sent at once on SubscribeRules.
    /// </summary>
    Task RulesChanged(RuleView[] rules);

    /// <summary>
    /// Rule counters moved: the rules whose hits or filter timeouts differ from what this connection was last sent, at
    /// most once per tick however much traffic the rules see. Rules subscribers.
    /// </summary>
    Task RuleHits(RuleCounters[] counters);

    /// <summary>
    /// This connection fell behind and events of <paramref name="scope"/> ("flows" or "flow") were discarded.
    /// For "flow", <paramref name="cursor"/> is the lowest message index whose add or change was not delivered:
    /// re-read from it with GET /api/flows/{flowId}/messages?after={cursor - 1}. For "flows", re-list with
    /// GET /api/flows; <paramref name="cursor"/> counts the flow-list updates discarded.
    /// </summary>
    Task Gap(string scope, string? flowId, long cursor);
}
