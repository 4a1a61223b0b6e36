using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Flows;

public sealed class FlowStoreTests
{
    [Fact]
    public void Constructor_DefaultOptions()
    {
        var store = new FlowStore();
        Assert.Equal(new FlowStoreOptions(), store.Options);
        Assert.Equal(10_000, store.Options.MaxFlows);
        Assert.Equal(100_000, store.Options.MaxMessagesPerFlow);
        Assert.Equal(0, store.Count);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 0)]
    [InlineData(-5, 10)]
    public void Constructor_RejectsBoundsBelowOne(int maxFlows, int maxMessages) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlowStore(new FlowStoreOptions { MaxFlows = maxFlows, MaxMessagesPerFlow = maxMessages }));

    [Fact]
    public void Add_ThenGet()
    {
        var store = new FlowStore();
        var flow = Flow("/a");
        store.Add(flow);
        Assert.Same(flow, store.Get(flow.Id));
        Assert.Null(store.Get("unknown"));
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Add_Null_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new FlowStore().Add(null!));

    [Fact]
    public void Add_DuplicateId_Throws_AndChangesNothing()
    {
        var store = new FlowStore();
        var events = Record(store);
        var original = Flow("/a", id: "same");
        store.Add(original);
        Assert.Throws<InvalidOperationException>(() => store.Add(Flow("/b", id: "same")));

        Assert.Same(original, store.Get("same"));
        Assert.Equal(1, store.Count);
        Assert.Equal([original], store.Snapshot());
        Assert.Single(events);
    }

    [Fact]
    public void Query_NewestFirst_WithSkipAndTake()
    {
        var store = new FlowStore();
        var flows = Enumerable.Range(0, 6).Select(i => Flow($"/{i}")).ToList();
        flows.ForEach(store.Add);

        Assert.Equal(Enumerable.Reverse(flows), store.Query());
        Assert.Equal([flows[5], flows[4]], store.Query(take: 2));
        Assert.Equal([flows[3], flows[2]], store.Query(skip: 2, take: 2));
        Assert.Empty(store.Query(skip: 6));
        Assert.Empty(store.Query(take: 0));
    }

    [Fact]
    public void Query_Predicate_SkipsCountOnlyMatches()
    {
        var store = new FlowStore();
        var flows = Enumerable.Range(0, 10).Select(i => Flow($"/{i}")).ToList();
        flows.ForEach(store.Add);
        bool IsEven(HttpFlow f) => int.Parse(f.Request.Path[1..], System.Globalization.CultureInfo.InvariantCulture) % 2 == 0;

        Assert.Equal([flows[8], flows[6], flows[4], flows[2], flows[0]], store.Query(IsEven));
        Assert.Equal([flows[4], flows[2]], store.Query(IsEven, skip: 2, take: 2));
    }

    [Fact]
    public void Snapshot_OldestFirst_AndACopy()
    {
        var store = new FlowStore();
        var flows = Enumerable.Range(0, 3).Select(i => Flow($"/{i}")).ToList();
        flows.ForEach(store.Add);
        var snapshot = store.Snapshot();
        store.Add(Flow("/later"));
        Assert.Equal(flows, snapshot);
    }

    [Fact]
    public void Remove_PublishesAndForgets()
    {
        var store = new FlowStore();
        var flow = Flow("/a");
        store.Add(flow);
        var events = Record(store);

        Assert.True(store.Remove(flow.Id));
        Assert.False(store.Remove(flow.Id));
        Assert.Null(store.Get(flow.Id));
        Assert.Empty(store.Query());
        Assert.Equal([new FlowEvent(FlowEventKind.FlowRemoved, flow)], events);
    }

    [Fact]
    public void Eviction_PrefersTheOldestFinishedFlow()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 3 });
        var liveOld = Flow("/live-old", live: true);
        var finished = Flow("/finished");
        var liveNew = Flow("/live-new", live: true);
        store.Add(liveOld);
        store.Add(finished);
        store.Add(liveNew);
        var events = Record(store);

        var incoming = Flow("/incoming", live: true);
        store.Add(incoming);

        Assert.Equal([liveOld, liveNew, incoming], store.Snapshot());
        Assert.Null(store.Get(finished.Id));
        Assert.Equal(
            [new FlowEvent(FlowEventKind.FlowStarted, incoming), new FlowEvent(FlowEventKind.FlowRemoved, finished)],
            events);
    }

    [Fact]
    public void Eviction_WhenEverythingIsLive_TakesTheOldest()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 2 });
        var a = Flow("/a", live: true);
        var b = Flow("/b", live: true);
        var c = Flow("/c", live: true);
        store.Add(a);
        store.Add(b);
        store.Add(c);
        Assert.Equal([b, c], store.Snapshot());
        Assert.Equal(2, store.Count);
    }

    [Fact]
    public void Eviction_KeepsTheBound_UnderManyAdds()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 5 });
        var removed = new List<HttpFlow>();
        using var subscription = store.Subscribe(e =>
        {
            if (e.Kind == FlowEventKind.FlowRemoved)
            {
                removed.Add(e.Flow);
            }
        });
        var flows = Enumerable.Range(0, 20).Select(i => Flow($"/{i}")).ToList();
        flows.ForEach(store.Add);

        Assert.Equal(5, store.Count);
        Assert.Equal(flows.Skip(15), store.Snapshot());
        Assert.Equal(flows.Take(15), removed);
    }

    [Fact]
    public void CreateWebSocketData_UsesTheMessageBound()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxMessagesPerFlow = 7 });
        Assert.Equal(7, store.CreateWebSocketData().MaxMessages);
    }

    [Fact]
    public void AddMessage_RecordsAndPublishes()
    {
        var store = new FlowStore();
        var flow = Flow("/ws");
        flow.WebSocket = store.CreateWebSocketData();
        store.Add(flow);
        var events = Record(store);

        var message = new WebSocketMessage(Opcode.Text, true, "hi"u8.ToArray(), 1);
        store.AddMessage(flow, message);

        Assert.Equal(0, message.Index);
        Assert.Same(message, Assert.Single(flow.WebSocket.Messages));
        Assert.Equal([new FlowEvent(FlowEventKind.MessageAdded, flow, message)], events);
    }

    [Fact]
    public void AddMessage_OnAPlainHttpFlow_Throws()
    {
        var store = new FlowStore();
        var flow = Flow("/plain");
        store.Add(flow);
        Assert.Throws<InvalidOperationException>(() => store.AddMessage(flow, new WebSocketMessage(Opcode.Text, true, [], 0)));
        Assert.Throws<ArgumentNullException>(() => store.AddMessage(null!, new WebSocketMessage(Opcode.Text, true, [], 0)));
    }

    [Fact]
    public void Events_ArePublishedInOrder_ToEverySubscriber()
    {
        var store = new FlowStore();
        var first = Record(store);
        var second = Record(store);

        var flow = Flow("/ws", live: true);
        flow.WebSocket = store.CreateWebSocketData();
        var message = new WebSocketMessage(Opcode.Binary, false, [1], 1);
        store.Add(flow);
        store.FlowUpdated(flow);
        store.AddMessage(flow, message);
        store.MessageChanged(flow, message);
        store.FlowEnded(flow);
        store.Remove(flow.Id);

        FlowEvent[] expected =
        [
            new(FlowEventKind.FlowStarted, flow),
            new(FlowEventKind.FlowUpdated, flow),
            new(FlowEventKind.MessageAdded, flow, message),
            new(FlowEventKind.MessageChanged, flow, message),
            new(FlowEventKind.FlowEnded, flow),
            new(FlowEventKind.FlowRemoved, flow),
        ];
        Assert.Equal(expected, first);
        Assert.Equal(expected, second);
    }

    [Fact]
    public void FlowEnded_MarksTheFlowNotLive()
    {
        var store = new FlowStore();
        var flow = Flow("/a", live: true);
        store.Add(flow);
        store.FlowEnded(flow);
        Assert.False(flow.IsLive);
        Assert.Throws<ArgumentNullException>(() => store.FlowEnded(null!));
    }

    [Fact]
    public void Unsubscribe_StopsDelivery_OnlyForThatSubscriber()
    {
        var store = new FlowStore();
        var kept = new List<FlowEvent>();
        var dropped = new List<FlowEvent>();
        using var keep = store.Subscribe(kept.Add);
        var subscription = store.Subscribe(dropped.Add);

        store.Add(Flow("/1"));
        subscription.Dispose();
        subscription.Dispose();
        store.Add(Flow("/2"));

        Assert.Single(dropped);
        Assert.Equal(2, kept.Count);
    }

    [Fact]
    public void SameListenerTwice_IsCalledTwice_AndEachSubscriptionRemovesOne()
    {
        var store = new FlowStore();
        var calls = 0;
        void Listener(FlowEvent e) => calls++;
        var one = store.Subscribe(Listener);
        using var two = store.Subscribe(Listener);

        store.Add(Flow("/1"));
        Assert.Equal(2, calls);
        one.Dispose();
        store.Add(Flow("/2"));
        Assert.Equal(3, calls);
    }

    [Fact]
    public void Subscribe_Null_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new FlowStore().Subscribe(null!));

    [Fact]
    public void SubscribingFromAListener_DoesNotDisturbTheCurrentPublish()
    {
        var store = new FlowStore();
        var late = new List<FlowEvent>();
        IDisposable? inner = null;
        using var outer = store.Subscribe(_ => inner ??= store.Subscribe(late.Add));

        store.Add(Flow("/1"));
        Assert.Empty(late);
        store.Add(Flow("/2"));
        Assert.Single(late);
        inner!.Dispose();
    }

    [Fact]
    public async Task ConcurrentAdds_AreAllStored()
    {
        var store = new FlowStore();
        var started = 0;
        using var subscription = store.Subscribe(e =>
        {
            if (e.Kind == FlowEventKind.FlowStarted)
            {
                Interlocked.Increment(ref started);
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 1000; i++)
            {
                store.Add(Flow($"/{t}/{i}"));
            }
        })));

        Assert.Equal(8000, store.Count);
        Assert.Equal(8000, started);
        Assert.Equal(8000, store.Query().Select(f => f.Id).Distinct().Count());
    }

    [Fact]
    public void HttpFlow_Basics()
    {
        var flow = Flow("/chat?room=1");
        Assert.True(Guid.TryParse(flow.Id, out _));
        Assert.NotEqual(flow.Id, Flow("/x").Id);
        Assert.False(flow.IsLive);
        Assert.False(flow.IsWebSocket);
        Assert.Equal("GET https://example.com/chat?room=1 -> …", flow.ToString());

        flow.WebSocket = new WebSocketData();
        flow.Response = new HttpResponseData { StatusCode = 101 };
        Assert.True(flow.IsWebSocket);
        Assert.Equal("GET https://example.com/chat?room=1 -> 101", flow.ToString());
        Assert.Equal("wss://example.com/chat?room=1", flow.Request.WebSocketUrl);
        Assert.Throws<ArgumentNullException>(() => new HttpFlow(null!, 0));
    }

    private static HttpFlow Flow(string path, bool live = false, string? id = null)
    {
        var request = new HttpRequestData { Method = "GET", Scheme = "https", Host = "example.com", Port = 443, Path = path };
        var flow = id is null ? new HttpFlow(request, 1) : new HttpFlow(request, 1) { Id = id };
        flow.IsLive = live;
        return flow;
    }

    private static List<FlowEvent> Record(FlowStore store)
    {
        var events = new List<FlowEvent>();
        store.Subscribe(events.Add);
        return events;
    }
}
