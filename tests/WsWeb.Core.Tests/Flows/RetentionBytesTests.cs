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
        Assert.Equal(5000, data.RetainedBytes);
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
        Assert.Equal(6000, store.RetainedBytes);
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
        Assert.Equal(ws.Messages.Count * 10, ws.RetainedBytes);
        Assert.Equal(ws.RetainedBytes, store.RetainedBytes);
        Assert.Equal(ws.Messages.Count, ws.Totals.FromClient);
        Assert.True(store.Remove(flow.Id));
        Assert.Equal(0, store.RetainedBytes);

        // A flow removed while its relay still records no longer counts toward the budget.
        store.AddMessage(flow, Binary(500));
        Assert.Equal(0, store.RetainedBytes);
    }

    private static HttpFlow NewFlow(FlowStore store)
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "h", Port = 80, Path = "/" }, 1.0);
        store.Add(flow);
        flow.WebSocket = store.CreateWebSocketData();
        return flow;
    }
}
