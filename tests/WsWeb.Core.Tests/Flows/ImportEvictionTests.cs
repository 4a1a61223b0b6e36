using WsWeb.Core.Flows;

namespace WsWeb.Core.Tests.Flows;

/// <summary>
/// An import adds finished flows with <see cref="FlowStore.TryAddFinished"/>: it may evict finished flows to make room,
/// never a live one, and it is told exactly which flows its adds evicted (the import report names them).
/// </summary>
public sealed class ImportEvictionTests
{
    [Fact]
    public void A_full_store_of_live_flows_has_no_room_and_keeps_them_all()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 2 });
        var a = Flow(live: true);
        var b = Flow(live: true);
        store.Add(a);
        store.Add(b);
        var evicted = new List<HttpFlow>();

        Assert.Equal(AddOutcome.NoRoom, store.TryAddFinished(Flow(), evicted));

        Assert.Empty(evicted);
        Assert.Equal([a, b], store.Snapshot());
    }

    [Fact]
    public void The_oldest_finished_flow_makes_room_and_is_reported()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 3 });
        var live = Flow(live: true);
        var finished = Flow();
        var newerFinished = Flow();
        store.Add(live);
        store.Add(finished);
        store.Add(newerFinished);
        var evicted = new List<HttpFlow>();
        var imported = Flow();

        Assert.Equal(AddOutcome.Added, store.TryAddFinished(imported, evicted));
        Assert.Equal(AddOutcome.AlreadyPresent, store.TryAddFinished(Flow(id: imported.Id), evicted));

        Assert.Equal([finished], evicted);
        Assert.Equal([live, newerFinished, imported], store.Snapshot());
    }

    [Fact]
    public void Flows_evicted_for_the_byte_budget_are_reported_too()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxTotalBytes = 10_000 });
        var old = Flow();
        old.Request.Content = new byte[6000];
        store.Add(old);
        store.FlowEnded(old);
        var evicted = new List<HttpFlow>();
        var imported = Flow();
        imported.Request.Content = new byte[6000];

        Assert.Equal(AddOutcome.Added, store.TryAddFinished(imported, evicted));

        Assert.Equal([old], evicted);
        Assert.Same(imported, store.Get(imported.Id));
    }

    /// <summary>
    /// The interleaving the import used to lose: it checked that a finished flow was there to make room (its own last
    /// flow), then a capture started and its add evicted that finished flow, then the import's add found only live
    /// flows and evicted one. The check now happens inside the add, so the import finds no room instead.
    /// </summary>
    [Fact]
    public void A_capture_that_takes_the_last_finished_place_leaves_the_import_no_room()
    {
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = 3 });
        var a = Flow(live: true);
        var b = Flow(live: true);
        store.Add(a);
        store.Add(b);
        var evicted = new List<HttpFlow>();
        var first = Flow();
        Assert.Equal(AddOutcome.Added, store.TryAddFinished(first, evicted));

        var capture = Flow(live: true);
        store.Add(capture);
        Assert.Null(store.Get(first.Id));

        Assert.Equal(AddOutcome.NoRoom, store.TryAddFinished(Flow(), evicted));
        Assert.Empty(evicted);
        Assert.Equal([a, b, capture], store.Snapshot());
    }

    /// <summary>
    /// Captures start and end on another thread while an import adds flows, keeping the store at the edge of full of
    /// live flows (their own adds then evict finished flows, the import's among them, and never a live one). Whatever
    /// the interleaving, no add of the import evicts a live flow, and what it reports evicted is exactly what its adds
    /// removed. Before the check moved into the store, an import checked first and added after, and lost this race.
    /// </summary>
    [Fact]
    public async Task Captures_starting_during_an_import_are_never_evicted_by_it()
    {
        const int maxFlows = 4;
        const int imports = 1_000_000;
        var store = new FlowStore(new FlowStoreOptions { MaxFlows = maxFlows });
        var liveEvicted = 0;
        var importThread = -1;
        var removedOnImportThread = new List<HttpFlow>();
        using var watch = store.Subscribe(e =>
        {
            if (e.Kind != FlowEventKind.FlowRemoved)
            {
                return;
            }

            // A capture's flow is live from before it is stored until it ends, never live again after: seen live
            // here, it was live when it was evicted.
            if (e.Flow.IsLive)
            {
                Interlocked.Increment(ref liveEvicted);
            }

            // The store publishes an add's evictions on the adding thread.
            if (Environment.CurrentManagedThreadId == Volatile.Read(ref importThread))
            {
                removedOnImportThread.Add(e.Flow);
            }
        });

        using var done = new CancellationTokenSource();
        var captures = Task.Run(() =>
        {
            // At most maxFlows live at once, and a new one only while fewer are: a capture's own add then always finds
            // a finished flow to evict, so any live flow evicted was evicted by the import.
            var live = new Queue<HttpFlow>();
            while (!done.IsCancellationRequested)
            {
                if (live.Count < maxFlows)
                {
                    var flow = Flow(live: true);
                    store.Add(flow);
                    live.Enqueue(flow);
                }
                else
                {
                    store.FlowEnded(live.Dequeue());
                }
            }
        });

        var reported = new List<HttpFlow>();
        var outcomes = new Dictionary<AddOutcome, int>();
        await Task.Run(() =>
        {
            Volatile.Write(ref importThread, Environment.CurrentManagedThreadId);
            for (var i = 0; i < imports && Volatile.Read(ref liveEvicted) == 0; i++)
            {
                var outcome = store.TryAddFinished(Flow(), reported);
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                if (outcome == AddOutcome.NoRoom && i % 64 == 0)
                {
                    // Let the captures end some flows: both outcomes should be exercised, not only NoRoom.
                    Thread.Yield();
                }
            }
        });
        await done.CancelAsync();
        await captures;

        Assert.Equal(0, liveEvicted);
        Assert.Equal(removedOnImportThread, reported);
        Assert.All(reported, flow => Assert.Null(store.Get(flow.Id)));
        Assert.True(outcomes.GetValueOrDefault(AddOutcome.Added) > 0, "some imported flows were added");
        Assert.True(store.Count <= maxFlows);
    }

    private static HttpFlow Flow(bool live = false, string? id = null)
    {
        var request = new HttpRequestData { Method = "GET", Scheme = "http", Host = "import.test", Port = 80, Path = "/" };
        var flow = id is null ? new HttpFlow(request, 1) : new HttpFlow(request, 1) { Id = id };
        flow.IsLive = live;
        return flow;
    }
}
