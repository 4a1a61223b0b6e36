using Microsoft.AspNetCore.SignalR;

namespace WsWeb.Hubs;

/// <summary>
/// The dashboard's live feed at <c>/hubs/flows</c>. Calls only change what this connection is subscribed
/// to; everything it receives is sent by the connection's feed (<see cref="ClientFeed"/>), batched and bounded.
/// </summary>
internal sealed class FlowsHub(FlowsHubRouter router) : Hub<IFlowsClient>
{
    public override Task OnConnectedAsync()
    {
        router.Connect(Context.ConnectionId);
        return Task.CompletedTask;
    }

    public override Task OnDisconnectedAsync(Exception? exception) => router.DisconnectAsync(Context.ConnectionId);

    /// <summary>Flow-list updates: FlowsChanged, FlowsRemoved, FlowClosed, Gap("flows").</summary>
    public void SubscribeFlows() => router.SubscribeFlows(Context.ConnectionId);

    public void UnsubscribeFlows() => router.UnsubscribeFlows(Context.ConnectionId);

    /// <summary>One flow's MessagesAdded, MessagesChanged, FlowClosed, Gap("flow"); returns the index live delivery starts at.</summary>
    public long SubscribeFlow(string flowId) => router.SubscribeFlow(Context.ConnectionId, flowId);

    public void UnsubscribeFlow(string flowId) => router.UnsubscribeFlow(Context.ConnectionId, flowId);

    /// <summary>HeldChanged with the full held list, now and whenever it changes.</summary>
    public void SubscribeIntercept() => router.SubscribeIntercept(Context.ConnectionId);

    public void UnsubscribeIntercept() => router.UnsubscribeIntercept(Context.ConnectionId);
}
