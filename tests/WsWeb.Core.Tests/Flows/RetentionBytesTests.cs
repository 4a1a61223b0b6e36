using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Flows;

public sealed class RetentionBytesTests
{
    private static WebSocketMessage Binary(int size) => new(Opcode.Binary, true, new byte[size], 1.0);

    [Fact]
    public void PerFlowByteBoundTrimsOldestButKeepsTheNewest()
    {
        var data = new WebSocketData(maxMessages: 1000, maxBytes: 1000);
        for (var i = 0; i < 20; i++)
        {
            data.Add(Binary(100));
        }

        Assert.True(data.RetainedBytes <= 1000);
        Assert.Equal(20, data.TotalCount);
        Assert.Equal(19, data.Messages[^1].Index);

        var huge = Binary(5000);
        data.Add(huge);
        Assert.Same(huge, Assert.Single(data.Messages));
        Assert.Equal(5000 + WebSocketData.MessageOverhead, data.RetainedBytes);
    }

    [Fact]
    public void EmptyMessagesCountTowardTheByteBound_SoAFloodOfThemIsTrimmed()
    {
        // Each message costs memory beyond its content; a bound on content alone let 10 million empty ones through.
        var data = new WebSocketData(maxMessages: 1_000_000, maxBytes: 1000L * WebSocketData.MessageOverhead);
        for (var i = 0; i < 10_000; i++)
        {
            data.Add(new WebSocketMessage(Opcode.Text, true, [], 1.0));
        }

        Assert.InRange(data.Messages.Count, 900, 1000);
        Assert.Equal(data.Messages.Count * (long)WebSocketData.MessageOverhead, data.RetainedBytes);
        Assert.Equal(10_000, data.TotalCount);
        Assert.Equal(0, data.Totals.BytesFromClient);
    }

    [Fact]
    public void StoreByteBudgetEvictsFinishedFlowsFirst()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 10_000, MaxBytesPerFlow = 1_000_000 });
        var finished = NewFlow(store);
        store.AddMessage(finished, Binary(6000));
        store.FlowEnded(finished);
        var live = NewFlow(store);
        live.IsLive = true;

        store.AddMessage(live, Binary(6000));

        Assert.Null(store.Get(finished.Id));
        Assert.Same(live, store.Get(live.Id));
        Assert.Equal(6000 + WebSocketData.MessageOverhead, store.RetainedBytes);
    }

    [Fact]
    public void EditsAfterRecordingDoNotSkewTheByteBudget()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxMessagesPerFlow = 10 });
        var flow = NewFlow(store);
        for (var i = 0; i < 100; i++)
        {
            var message = Binary(10);
            store.AddMessage(flow, message);
            message.Content = new byte[1000];   // an addon or a user edit, after it was recorded
        }

        var ws = flow.WebSocket!;
        Assert.Equal(ws.Messages.Count * (10 + WebSocketData.MessageOverhead), ws.RetainedBytes);
        Assert.Equal(ws.RetainedBytes, store.RetainedBytes);
        Assert.Equal(ws.Messages.Count, ws.Totals.FromClient);
        Assert.True(store.Remove(flow.Id));
        Assert.Equal(0, store.RetainedBytes);

        // A flow removed while its relay still records no longer counts toward the budget.
        store.AddMessage(flow, Binary(500));
        Assert.Equal(0, store.RetainedBytes);
    }

    [Fact]
    public void HttpBodiesCountTowardTheBudget_AndTheOldestFinishedFlowsMakeRoom()
    {
        // A POST of 1500 bytes answered with 1500: five of them are 15,000 bytes against a budget of 10,000.
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 10_000 });
        var flows = new List<HttpFlow>();
        for (var i = 0; i < 5; i++)
        {
            var flow = NewHttpFlow();
            store.Add(flow);
            flow.IsLive = true;
            flow.Request.Content = new byte[1500];   // as the forwarder records them: the request body once sent,
            store.FlowUpdated(flow);
            flow.Response = new HttpResponseData { StatusCode = 200, Content = new byte[1500] };   // the response's as it ends
            store.FlowEnded(flow);
            flows.Add(flow);
            Assert.Equal(Stored(store).Sum(Bodies), store.RetainedBytes);
        }

        Assert.True(store.RetainedBytes <= 10_000, $"{store.RetainedBytes} bytes retained");
        Assert.Null(store.Get(flows[0].Id));
        Assert.Same(flows[^1], store.Get(flows[^1].Id));

        // A flow removed while its exchange still records does not count any more.
        var removed = flows[^1];
        Assert.True(store.Remove(removed.Id));
        var before = store.RetainedBytes;
        removed.Response!.Content = new byte[5000];
        store.FlowEnded(removed);
        Assert.Equal(before, store.RetainedBytes);
        Assert.Equal(Stored(store).Sum(Bodies), store.RetainedBytes);
    }

    [Fact]
    public void ImportedBodiesCount_AndALiveExchangeIsNotEvictedForThem()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 10_000 });
        var live = NewHttpFlow();
        store.Add(live);
        live.IsLive = true;
        live.Request.Content = new byte[4000];
        store.FlowUpdated(live);

        // Imported flows arrive with their bodies; the store makes room among finished flows, never the live one.
        for (var i = 0; i < 4; i++)
        {
            var imported = NewHttpFlow();
            imported.Request.Content = new byte[1000];
            imported.Response = new HttpResponseData { StatusCode = 200, Content = new byte[1000] };
            Assert.True(store.TryAdd(imported));
            store.FlowEnded(imported);
        }

        Assert.Same(live, store.Get(live.Id));
        Assert.True(store.RetainedBytes <= 10_000, $"{store.RetainedBytes} bytes retained");
        Assert.Equal(Stored(store).Sum(Bodies), store.RetainedBytes);
        Assert.True(store.Count < 5, "the oldest imported flows were evicted for the budget");
    }

    [Fact]
    public void LiveFlowsOverTheTotalBudget_LoseTheirOldestMessages_OnceNoFinishedFlowIsLeft()
    {
        // Each live flow may keep far more than the budget's share: per flow, 1,000,000 bytes; in all, 10,000.
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 10_000, MaxBytesPerFlow = 1_000_000 });
        var finished = NewFlow(store);
        store.AddMessage(finished, Binary(3000));
        store.FlowEnded(finished);
        var big = NewFlow(store);
        var small = NewFlow(store);
        big.IsLive = small.IsLive = true;

        for (var i = 0; i < 60; i++)
        {
            store.AddMessage(big, Binary(150));
            store.AddMessage(small, Binary(50));
            Assert.True(store.RetainedBytes <= 10_000, $"{store.RetainedBytes} bytes retained after round {i}");
        }

        // The finished flow went first; then both live flows lost their oldest messages, the larger one more.
        Assert.Null(store.Get(finished.Id));
        Assert.Same(big, store.Get(big.Id));
        Assert.Same(small, store.Get(small.Id));
        Assert.True(big.WebSocket!.TrimmedCount > 0 && small.WebSocket!.TrimmedCount > 0);
        Assert.True(big.WebSocket.RetainedBytes > small.WebSocket.RetainedBytes);
        Assert.Equal(big.WebSocket.RetainedBytes + small.WebSocket.RetainedBytes, store.RetainedBytes);

        // Indices stay absolute and the newest messages are the ones kept.
        Assert.Equal(59, big.WebSocket.Messages[^1].Index);
        Assert.Equal(big.WebSocket.TrimmedCount, big.WebSocket.Messages[0].Index);
        Assert.Equal(60, big.WebSocket.TotalCount);
    }

    [Fact]
    public void ALiveFlowKeepsItsNewestMessage_WhateverTheBudget()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 1000, MaxBytesPerFlow = 1_000_000 });
        var flow = NewFlow(store);
        flow.IsLive = true;
        var huge = Binary(5000);

        store.AddMessage(flow, Binary(100));
        store.AddMessage(flow, huge);

        Assert.Same(huge, Assert.Single(flow.WebSocket!.Messages));
        Assert.Equal(5000 + WebSocketData.MessageOverhead, store.RetainedBytes);
    }

    private static List<HttpFlow> Stored(FlowStore store) => store.Snapshot();

    private static long Bodies(HttpFlow flow) => (flow.Request.Content?.Length ?? 0) + (flow.Response?.Content?.Length ?? 0) + (flow.WebSocket?.RetainedBytes ?? 0);

    private static HttpFlow NewHttpFlow() => new(new HttpRequestData { Method = "POST", Scheme = "http", Host = "h", Port = 80, Path = "/" }, 1.0);

    private static HttpFlow NewFlow(FlowStore store)
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "h", Port = 80, Path = "/" }, 1.0);
        store.Add(flow);
        flow.WebSocket = store.CreateWebSocketData();
        return flow;
    }
}
