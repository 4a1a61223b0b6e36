using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.WebSockets;

public sealed class WebSocketDataTests
{
    [Fact]
    public void Constructor_Defaults_AnOpenConnection()
    {
        var data = new WebSocketData();
        Assert.Empty(data.Messages);
        Assert.Null(data.ClosedByClient);
        Assert.Null(data.CloseCode);
        Assert.Null(data.CloseReason);
        Assert.Null(data.TimestampEnd);
        Assert.Equal(int.MaxValue, data.MaxMessages);
        Assert.Equal(0, data.TotalCount);
        Assert.Equal(0, data.TrimmedCount);
        Assert.Equal(0, data.ClientPings + data.ServerPings + data.ClientPongs + data.ServerPongs);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Constructor_RetentionBelowOne_Throws(int max) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new WebSocketData(max));

    [Fact]
    public void Add_KeepsOrder_AndAssignsIndices()
    {
        var data = new WebSocketData();
        var messages = Enumerable.Range(0, 5).Select(i => Message(i)).ToList();
        foreach (var message in messages)
        {
            data.Add(message);
        }

        Assert.Equal(messages, data.Messages);
        Assert.Equal([0L, 1, 2, 3, 4], data.Messages.Select(m => m.Index));
        Assert.Same(messages[3], data.Messages[3]);
        Assert.Equal(5, data.Messages.Count);
        Assert.Equal(5, data.TotalCount);
    }

    [Fact]
    public void Add_Null_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new WebSocketData().Add(null!));

    [Fact]
    public void TryClose_RecordsOnlyTheFirstClose()
    {
        var data = new WebSocketData();
        Assert.True(data.TryClose(closedByClient: false, 1001, "going away", 10.5));
        Assert.False(data.TryClose(closedByClient: true, 1000, "bye", 11));

        Assert.False(data.ClosedByClient);
        Assert.Equal(1001, data.CloseCode);
        Assert.Equal("going away", data.CloseReason);
        Assert.Equal(10.5, data.TimestampEnd);
    }

    [Fact]
    public void TryClose_WithoutReason()
    {
        var data = new WebSocketData();
        Assert.True(data.TryClose(closedByClient: true, 1005, null, 1));
        Assert.True(data.ClosedByClient);
        Assert.Equal(1005, data.CloseCode);
        Assert.Null(data.CloseReason);
    }

    [Fact]
    public void CloseProperties_AreSettable_ForImporters()
    {
        var data = new WebSocketData
        {
            ClosedByClient = true,
            CloseCode = 1006,
            CloseReason = "lost",
            TimestampEnd = 3,
        };
        Assert.True(data.ClosedByClient);
        Assert.Equal(1006, data.CloseCode);
        Assert.Equal("lost", data.CloseReason);
        Assert.Equal(3, data.TimestampEnd);
        Assert.False(data.TryClose(false, 1000, null, 4));
    }

    [Fact]
    public void Retention_TrimsOldest_IndicesStayAbsolute()
    {
        var data = new WebSocketData(maxMessages: 10);
        var all = Enumerable.Range(0, 25).Select(i => Message(i)).ToList();
        foreach (var message in all)
        {
            data.Add(message);
        }

        Assert.InRange(data.Messages.Count, 1, 10);
        Assert.Equal(25, data.TotalCount);
        Assert.Equal(25 - data.Messages.Count, data.TrimmedCount);
        Assert.Equal(data.TrimmedCount, data.Messages[0].Index);
        Assert.Same(all[^1], data.Messages[^1]);
        Assert.Equal(all.Skip((int)data.TrimmedCount), data.Messages);

        // Every message keeps the index it got, trimmed or not.
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), all.Select(m => m.Index));
    }

    [Fact]
    public void Find_ByAbsoluteIndex()
    {
        var data = new WebSocketData(maxMessages: 10);
        var all = Enumerable.Range(0, 25).Select(i => Message(i)).ToList();
        all.ForEach(m => data.Add(m));

        Assert.Null(data.Find(0));
        Assert.Null(data.Find(data.TrimmedCount - 1));
        Assert.Same(all[(int)data.TrimmedCount], data.Find(data.TrimmedCount));
        Assert.Same(all[24], data.Find(24));
        Assert.Null(data.Find(25));
        Assert.Null(data.Find(-1));
    }

    [Fact]
    public void Snapshot_FromAbsoluteIndex_WithLimit()
    {
        var data = new WebSocketData(maxMessages: 10);
        var all = Enumerable.Range(0, 25).Select(i => Message(i)).ToList();
        all.ForEach(m => data.Add(m));
        var first = data.TrimmedCount;

        Assert.Equal(all.Skip((int)first), data.Snapshot());
        Assert.Equal(all.Skip((int)first), data.Snapshot(fromIndex: 0));
        Assert.Equal(all.Skip(20), data.Snapshot(fromIndex: 20));
        Assert.Equal(all.Skip(20).Take(2), data.Snapshot(fromIndex: 20, limit: 2));
        Assert.Empty(data.Snapshot(fromIndex: 25));
        Assert.Empty(data.Snapshot(fromIndex: 1000));
        Assert.Empty(data.Snapshot(limit: 0));
    }

    [Fact]
    public void Snapshot_IsACopy()
    {
        var data = new WebSocketData();
        data.Add(Message(0));
        var snapshot = data.Snapshot();
        data.Add(Message(1));
        Assert.Single(snapshot);
    }

    [Fact]
    public void Messages_CanBeEnumeratedWhileAdding()
    {
        var data = new WebSocketData();
        data.Add(Message(0));
        data.Add(Message(1));
        var seen = 0;
        foreach (var message in data.Messages)
        {
            data.Add(Message(2));
            seen++;
        }

        Assert.Equal(2, seen);
        Assert.Equal(4, data.Messages.Count);
    }

    [Fact]
    public void Retention_OfOne_KeepsTheNewest()
    {
        var data = new WebSocketData(maxMessages: 1);
        var all = Enumerable.Range(0, 5).Select(i => Message(i)).ToList();
        all.ForEach(m => data.Add(m));
        Assert.Same(all[4], Assert.Single(data.Messages));
        Assert.Equal(4, data.TrimmedCount);
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(500)]
    public async Task ConcurrentAdd_LosesNothing(int maxMessages)
    {
        const int Threads = 8;
        const int PerThread = 5000;
        var data = new WebSocketData(maxMessages);
        var added = new WebSocketMessage[Threads][];
        using var start = new Barrier(Threads);
        var tasks = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(
            () =>
            {
                added[t] = Enumerable.Range(0, PerThread).Select(i => Message(i, fromClient: t % 2 == 0)).ToArray();
                start.SignalAndWait();
                foreach (var message in added[t])
                {
                    data.Add(message);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();
        await Task.WhenAll(tasks);

        Assert.Equal(Threads * PerThread, data.TotalCount);
        var indices = added.SelectMany(a => a).Select(m => m.Index).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, Threads * PerThread).Select(i => (long)i), indices);

        // Each thread's messages got increasing indices, in the order it added them.
        foreach (var perThread in added)
        {
            Assert.True(perThread.Zip(perThread.Skip(1)).All(p => p.First.Index < p.Second.Index));
        }

        var retained = data.Snapshot();
        Assert.Equal(retained.Select(m => m.Index), retained.Select(m => m.Index).Order());
        Assert.Equal(Threads * PerThread - 1, retained[^1].Index);
    }

    [Fact]
    public void ControlCounts_PerDirection()
    {
        var data = new WebSocketData();
        data.CountControl(Opcode.Ping, fromClient: true);
        data.CountControl(Opcode.Ping, fromClient: true);
        data.CountControl(Opcode.Ping, fromClient: false);
        data.CountControl(Opcode.Pong, fromClient: false);
        data.CountControl(Opcode.Text, fromClient: false);
        Assert.Equal((2L, 1L, 0L, 1L), (data.ClientPings, data.ServerPings, data.ClientPongs, data.ServerPongs));

        data.SetControlCounts(5, 6, 7, 8);
        Assert.Equal((5L, 6L, 7L, 8L), (data.ClientPings, data.ServerPings, data.ClientPongs, data.ServerPongs));
    }

    private static WebSocketMessage Message(int i, bool fromClient = true) =>
        new(Opcode.Binary, fromClient, BitConverter.GetBytes(i), timestamp: i);
}
