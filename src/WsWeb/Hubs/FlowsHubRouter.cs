using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.AspNetCore.SignalR;
using WsWeb.Core.Flows;
using WsWeb.Intercept;
using WsWeb.Rules;

namespace WsWeb.Hubs;

/// <summary>
/// Routes store events to the feeds of the connections that asked for them. The store calls
/// <see cref="OnFlowEvent"/> synchronously on relay threads, so routing reads copy-on-write subscriber
/// arrays and appends to per-connection queues; it never calls SignalR (each feed's sender does).
/// </summary>
internal sealed class FlowsHubRouter : IAsyncDisposable
{
    private readonly FlowStore _store;
    private readonly InterceptService _intercept;
    private readonly InterceptSettingsStore _interceptSettings;
    private readonly RuleStore _rules;
    private readonly HoldResolutions _resolutions;
    private readonly IHubContext<FlowsHub, IFlowsClient> _hub;
    private readonly FlowsHubOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<FlowsHubRouter> _logger;
    private readonly IDisposable _subscription;
    private readonly ConcurrentDictionary<string, ClientFeed> _feeds = new(StringComparer.Ordinal);

    // Per-flow subscribers and summary cache. An entry lives until its flow is removed from the store,
    // so the map is bounded by the store's own bound.
    private readonly ConcurrentDictionary<string, FlowRoute> _routes = new(StringComparer.Ordinal);
    private ImmutableArray<ClientFeed> _flowsSubscribers = [];
    private ImmutableArray<ClientFeed> _interceptSubscribers = [];
    private ImmutableArray<ClientFeed> _rulesSubscribers = [];

    public FlowsHubRouter(
        FlowStore store,
        InterceptService intercept,
        InterceptSettingsStore interceptSettings,
        RuleStore rules,
        HoldResolutions resolutions,
        IHubContext<FlowsHub, IFlowsClient> hub,
        FlowsHubOptions options,
        TimeProvider time,
        ILogger<FlowsHubRouter> logger)
    {
        _store = store;
        _intercept = intercept;
        _interceptSettings = interceptSettings;
        _rules = rules;
        _resolutions = resolutions;
        _hub = hub;
        _options = options;
        _time = time;
        _logger = logger;
        _subscription = store.Subscribe(OnFlowEvent);
        interceptSettings.Changed += OnInterceptSettingsChanged;
        rules.Changed += OnRulesChanged;
        rules.CountersChanged += OnRuleCountersChanged;
    }

    /// <summary>The live connections' feeds (tests read their queue metrics).</summary>
    public ICollection<ClientFeed> Feeds => _feeds.Values;

    /// <param name="abort">Closes the connection (its <c>HubCallerContext.Abort</c>).</param>
    public void Connect(string connectionId, Action abort)
    {
        var feed = new ClientFeed(connectionId, _options, _resolutions, _intercept, _interceptSettings, _rules, _time, _logger);
        if (_feeds.TryAdd(connectionId, feed))
        {
            feed.Start(_hub.Clients.Client(connectionId), abort);
        }
    }

    public Task DisconnectAsync(string connectionId)
    {
        if (!_feeds.TryRemove(connectionId, out var feed))
        {
            return Task.CompletedTask;
        }

        lock (feed.SubscriptionGate)
        {
            foreach (var flowId in feed.SubscribedFlows)
            {
                if (_routes.TryGetValue(flowId, out var route))
                {
                    route.Remove(feed);
                }
            }

            feed.SubscribedFlows.Clear();
            ImmutableInterlocked.Update(ref _flowsSubscribers, static (list, f) => list.Remove(f), feed);
            ImmutableInterlocked.Update(ref _interceptSubscribers, static (list, f) => list.Remove(f), feed);
            ImmutableInterlocked.Update(ref _rulesSubscribers, static (list, f) => list.Remove(f), feed);
        }

        return feed.StopAsync();
    }

    public void SubscribeFlows(string connectionId)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            if (!feed.FlowsSubscribed)
            {
                feed.FlowsSubscribed = true;
                ImmutableInterlocked.Update(ref _flowsSubscribers, static (list, f) => list.Add(f), feed);
            }
        }
    }

    public void UnsubscribeFlows(string connectionId)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            feed.FlowsSubscribed = false;
            ImmutableInterlocked.Update(ref _flowsSubscribers, static (list, f) => list.Remove(f), feed);
        }
    }

    /// <param name="countsOnly">HeldCounts instead of HeldChanged: for pages that show how many are held, not what.</param>
    public void SubscribeIntercept(string connectionId, bool countsOnly = false)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            feed.InterceptCountsOnly = countsOnly;
            if (!feed.InterceptSubscribed)
            {
                feed.InterceptSubscribed = true;
                ImmutableInterlocked.Update(ref _interceptSubscribers, static (list, f) => list.Add(f), feed);
            }
        }

        // The page needs the current list and settings to start from; they are small, so send them rather than make the
        // client ask. A page rendered before a teammate's change gets it here even if the change came before the subscribe.
        feed.HeldChanged();
        feed.InterceptChanged();
    }

    public void UnsubscribeIntercept(string connectionId)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            feed.InterceptSubscribed = false;
            ImmutableInterlocked.Update(ref _interceptSubscribers, static (list, f) => list.Remove(f), feed);
        }
    }

    /// <summary>RulesChanged (the whole list, sent at once too) and RuleHits.</summary>
    public void SubscribeRules(string connectionId)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            if (!feed.RulesSubscribed)
            {
                feed.RulesSubscribed = true;
                ImmutableInterlocked.Update(ref _rulesSubscribers, static (list, f) => list.Add(f), feed);
            }
        }

        // What changed between the page's render and this call is in it: the list is read when it is sent.
        feed.RulesChanged();
    }

    public void UnsubscribeRules(string connectionId)
    {
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            feed.RulesSubscribed = false;
            ImmutableInterlocked.Update(ref _rulesSubscribers, static (list, f) => list.Remove(f), feed);
        }
    }

    private void OnInterceptSettingsChanged()
    {
        foreach (var feed in _interceptSubscribers)
        {
            feed.InterceptChanged();
        }
    }

    private void OnRulesChanged()
    {
        foreach (var feed in _rulesSubscribers)
        {
            feed.RulesChanged();
        }
    }

    // On the relay thread, for every hit: each feed returns at once while its RuleHits is already due.
    private void OnRuleCountersChanged()
    {
        foreach (var feed in _rulesSubscribers)
        {
            feed.RuleCountersChanged();
        }
    }

    /// <summary>
    /// Subscribes to one flow's messages. Returns the number of messages recorded so far: every message
    /// with a higher or equal index reaches this connection (or is covered by a gap); older ones are read
    /// through REST. A few just below it may arrive live too, so clients merge by index.
    /// </summary>
    public long SubscribeFlow(string connectionId, string flowId)
    {
        ArgumentNullException.ThrowIfNull(flowId);
        var feed = Feed(connectionId);
        if (_store.Get(flowId) is not { } flow)
        {
            throw new HubException($"Flow {flowId} was not found.");
        }

        lock (feed.SubscriptionGate)
        {
            if (!feed.SubscribedFlows.Contains(flowId))
            {
                if (feed.SubscribedFlows.Count >= _options.MaxFlowSubscriptions)
                {
                    throw new HubException($"A connection may watch at most {_options.MaxFlowSubscriptions} flows; unsubscribe from one first.");
                }

                feed.SubscribedFlows.Add(flowId);
            }

            _routes.GetOrAdd(flowId, static _ => new FlowRoute()).Add(feed);
        }

        if (!flow.IsStored)
        {
            // Removed while we subscribed: its FlowRemoved may have missed the route we just made.
            _routes.TryRemove(flowId, out _);
            lock (feed.SubscriptionGate)
            {
                feed.SubscribedFlows.Remove(flowId);
            }

            feed.RemoveFlow(flow);
        }

        // Read after the subscription is visible: any message indexed from here on is published to it.
        return flow.WebSocket?.TotalCount ?? 0;
    }

    public void UnsubscribeFlow(string connectionId, string flowId)
    {
        ArgumentNullException.ThrowIfNull(flowId);
        var feed = Feed(connectionId);
        lock (feed.SubscriptionGate)
        {
            feed.SubscribedFlows.Remove(flowId);
            if (_routes.TryGetValue(flowId, out var route))
            {
                route.Remove(feed);
            }
        }
    }

    private ClientFeed Feed(string connectionId) =>
        _feeds.TryGetValue(connectionId, out var feed) ? feed : throw new HubException("The connection is closing.");

    private void OnFlowEvent(FlowEvent flowEvent)
    {
        var flow = flowEvent.Flow;
        _routes.TryGetValue(flow.Id, out var route);

        // Before queuing anywhere: a sender that finds the queued entry must also find the new version.
        route?.Touch();
        switch (flowEvent.Kind)
        {
            case FlowEventKind.MessageAdded when flowEvent.Message is { } message:
                if (route is not null)
                {
                    foreach (var feed in route.Subscribers)
                    {
                        feed.AddMessage(flow, message);
                    }
                }

                // Message counts and bytes are columns of the flow list.
                FlowListChanged(flow, route, closed: false);
                break;

            case FlowEventKind.MessageChanged when flowEvent.Message is { } message:
                if (route is not null)
                {
                    foreach (var feed in route.Subscribers)
                    {
                        feed.ChangeMessage(flow, message);
                    }
                }

                FlowListChanged(flow, route, closed: false);
                var interceptSubscribers = _interceptSubscribers;
                if (!interceptSubscribers.IsEmpty && _resolutions.Get(message) is not null)
                {
                    // Holding and every decision on a held message publish MessageChanged after updating the held list.
                    foreach (var feed in interceptSubscribers)
                    {
                        feed.HeldChanged();
                    }
                }

                break;

            case FlowEventKind.FlowStarted:
            case FlowEventKind.FlowUpdated:
                FlowListChanged(flow, route, closed: false);
                break;

            case FlowEventKind.FlowEnded:
                if (route is not null && flow.IsWebSocket)
                {
                    foreach (var feed in route.Subscribers)
                    {
                        feed.CloseFlow(flow);
                    }
                }

                FlowListChanged(flow, route, closed: flow.IsWebSocket);
                break;

            case FlowEventKind.FlowRemoved:
                _routes.TryRemove(flow.Id, out _);
                if (route is not null)
                {
                    foreach (var feed in route.Subscribers)
                    {
                        feed.RemoveFlow(flow);
                        lock (feed.SubscriptionGate)
                        {
                            // A removed flow no longer counts against the connection's subscription limit.
                            feed.SubscribedFlows.Remove(flow.Id);
                        }
                    }
                }

                var flowsSubscribers = _flowsSubscribers;
                foreach (var feed in flowsSubscribers)
                {
                    feed.FlowListRemoved(flow, route ?? new FlowRoute());
                }

                break;
        }
    }

    private void FlowListChanged(HttpFlow flow, FlowRoute? route, bool closed)
    {
        var subscribers = _flowsSubscribers;
        if (subscribers.IsEmpty || !flow.IsStored)
        {
            return;
        }

        // A route made here after the flow changed still serves that change: its summary is computed later.
        // A flow removed between the check above and here leaves one stray route behind; rare and small.
        route ??= _routes.GetOrAdd(flow.Id, static _ => new FlowRoute());
        foreach (var feed in subscribers)
        {
            feed.FlowListChanged(flow, route, closed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _subscription.Dispose();
        _interceptSettings.Changed -= OnInterceptSettingsChanged;
        _rules.Changed -= OnRulesChanged;
        _rules.CountersChanged -= OnRuleCountersChanged;
        var feeds = _feeds.Values.ToList();
        _feeds.Clear();
        await Task.WhenAll(feeds.Select(feed => feed.StopAsync()));
    }
}
