using Microsoft.AspNetCore.SignalR;

namespace WsWeb.Hubs;

/// <summary>
/// The dashboard's live feed at <c>/hubs/flows</c>. Calls only change what this connection is subscribed
/// to; everything it receives is sent by the connection's feed (<see cref="ClientFeed"/>), batched and bounded.
/// </summary>
internal sealed class FlowsHub(FlowsHubRouter router, IHostApplicationLifetime lifetime) : Hub<IFlowsClient>
{
    private const string StoppingKey = "wsweb.stopping";

    public override Task OnConnectedAsync()
    {
        router.Connect(Context.ConnectionId, Context.Abort);

        // A dashboard tab holds its connection open, and a stopping host waits for open connections up to its
        // shutdown timeout (30 s): close them once it stops, and at once for a tab that reconnects meanwhile. The
        // tab then shows it is offline instead of "live".
        Context.Items[StoppingKey] = lifetime.ApplicationStopping.Register(static context => ((HubCallerContext)context!).Abort(), Context);
        return Task.CompletedTask;
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(StoppingKey, out var registration))
        {
            ((CancellationTokenRegistration)registration!).Dispose();
        }

        return router.DisconnectAsync(Context.ConnectionId);
    }

    /// <summary>Flow-list updates: FlowsChanged, FlowsRemoved, FlowClosed, Gap("flows").</summary>
    public void SubscribeFlows() => router.SubscribeFlows(Context.ConnectionId);

    public void UnsubscribeFlows() => router.UnsubscribeFlows(Context.ConnectionId);

    /// <summary>One flow's MessagesAdded, MessagesChanged, FlowClosed, Gap("flow"); returns the index live delivery starts at.</summary>
    public long SubscribeFlow(string? flowId) => router.SubscribeFlow(Context.ConnectionId, RequireFlowId(flowId, nameof(SubscribeFlow)));

    public void UnsubscribeFlow(string? flowId) => router.UnsubscribeFlow(Context.ConnectionId, RequireFlowId(flowId, nameof(UnsubscribeFlow)));

    /// <summary>HeldChanged with the full held list (contents as previews) and InterceptChanged with the settings, now and whenever they change.</summary>
    public void SubscribeIntercept() => router.SubscribeIntercept(Context.ConnectionId);

    /// <summary>
    /// As <see cref="SubscribeIntercept"/>, with HeldCounts (held messages by flow id) instead of HeldChanged: what a page
    /// that only shows how many are held needs, a few bytes instead of every held message's preview on every change.
    /// </summary>
    public void SubscribeInterceptCounts() => router.SubscribeIntercept(Context.ConnectionId, countsOnly: true);

    public void UnsubscribeIntercept() => router.UnsubscribeIntercept(Context.ConnectionId);

    /// <summary>RulesChanged with the whole rule list, now and whenever a rule is created, changed or removed; RuleHits as counters move.</summary>
    public void SubscribeRules() => router.SubscribeRules(Context.ConnectionId);

    public void UnsubscribeRules() => router.UnsubscribeRules(Context.ConnectionId);

    // JSON null binds to a string parameter. It is the client's mistake, so it gets a HubException the client
    // can read rather than the router's ArgumentNullException, which SignalR reports as a server error.
    // A number, an object or a wrong argument count never gets this far: SignalR fails to bind it before the
    // hub or any hub filter runs, and answers with its fixed "Failed to invoke … due to an error on the server."
    // There is no hook for that short of EnableDetailedErrors, which would expose every server exception's
    // message too (docs/hub.md, "Errors").
    private static string RequireFlowId(string? flowId, string method) => string.IsNullOrEmpty(flowId)
        ? throw new HubException($"{method} needs the id of a flow; it got {(flowId is null ? "null" : "an empty string")}.")
        : flowId;
}
