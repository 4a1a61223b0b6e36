using System.Net;
using System.Text;
using System.Text.Json;
using WsWeb.Hubs;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>A host whose hub queues hold at most 1 MiB of content per connection.</summary>
public sealed class SmallByteQueueApp : IAsyncLifetime
{
    public static readonly FlowsHubOptions HubOptions = new() { QueueByteLimit = 1024 * 1024 };

    public WsWebApp App { get; } = new(services => services.AddSingleton(HubOptions));

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

/// <summary>
/// MessagesChanged carries whole contents (an edit, a replace rule's result, a release with edits), so it counts
/// against the byte bound like MessagesAdded: a dashboard that stops reading while messages are edited makes the
/// server hold at most the bound, and hears where to catch up.
/// </summary>
public sealed class ChangedContentBoundTests(SmallByteQueueApp fixture) : IClassFixture<SmallByteQueueApp>, IAsyncLifetime
{
    private const int EditSize = 256 * 1024;

    private readonly WsWebApp _app = fixture.App;

    private static long Limit => SmallByteQueueApp.HubOptions.QueueByteLimit;

    private FlowsHubRouter Router => _app.Services.GetRequiredService<FlowsHubRouter>();

    public Task InitializeAsync() => _app.ResetAsync();

    public Task DisposeAsync() => _app.ResetAsync();

    [Fact]
    public async Task Edits_of_delivered_messages_while_a_client_stops_reading_hold_at_most_the_byte_bound_and_end_in_a_gap()
    {
        const int Count = 100;
        var (client, _, flow) = await _app.ConnectAsync();
        await using var c = client;
        var (hub, feed) = await SubscribeAsync(flow.Id);
        await using var h = hub;

        // Delivered while the client reads: 2 * Count small messages (each is echoed).
        for (var i = 0; i < Count; i++)
        {
            await client.SendTextAsync($"m{i}");
            await client.ReceiveTextAsync();
        }

        var added = new MessageSequence();
        while (added.Expected < 2 * Count)
        {
            added.Observe(await hub.ReceiveAsync());
        }

        Assert.Empty(added.Gaps);
        await Eventually.AssertAsync(() => feed.Queued == 0 && !feed.HasWork, "the feed drained");

        // Then the client stops reading and every message is edited to 256 KiB, as an addon would: set the
        // content (the first one stays the original) and tell the store, which routes it to the hub synchronously.
        hub.PauseReading();
        long most = 0;
        for (var i = 0; i < 2 * Count; i++)
        {
            var message = flow.WebSocket!.Find(i)!;
            message.Content = Encoding.UTF8.GetBytes(new string((char)('a' + (i % 26)), EditSize));
            _app.Store.MessageChanged(flow, message);
            most = Math.Max(most, feed.QueuedBytes);
        }

        // 50 MiB of edits; the transport's buffers take a few MiB at most, the queue the rest up to its bound.
        Assert.True(feed.Dropped > 0, $"edits were discarded (queued {feed.QueuedBytes} bytes in {feed.Queued} events)");
        Assert.InRange(most, EditSize, Limit);
        Assert.InRange(feed.HighWaterBytes, EditSize, Limit);

        hub.ResumeReading();
        var cursor = await ReadChangesUntilGapAsync(hub, flow.Id, index => index < 2 * Count, m => m.GetProperty("length").GetInt32() == EditSize, (index, message) =>
        {
            Assert.Equal(EditSize, message.GetProperty("length").GetInt32());
            Assert.Equal(new string((char)('a' + (index % 26)), EditSize), message.GetProperty("content").GetString());
            Assert.True(message.GetProperty("edited").GetBoolean());
        });

        // The dashboard's catch-up from the gap: REST has the edit the hub did not send.
        var page = await ApiAssert.JsonAsync(await _app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={cursor - 1}&limit=1"));
        var first = page.GetProperty("messages")[0];
        Assert.Equal(cursor, first.GetProperty("index").GetInt64());
        Assert.Equal(EditSize, first.GetProperty("length").GetInt32());

        // Everything held was released: the counts come back to zero.
        await Eventually.AssertAsync(() => feed.Queued == 0 && feed.QueuedBytes == 0 && !feed.HasWork, "the feed drained after the gap");
    }

    [Fact]
    public async Task A_replace_rule_that_grows_messages_is_counted_at_its_result_while_a_client_stops_reading()
    {
        // 16 bytes on the wire, 256 KiB after the rule: the add is small, the change that follows it is not.
        const int Count = 100;
        var wire = new string('x', EditSize / (16 * 1024));
        var grown = new string('y', EditSize);
        await ApiAssert.JsonAsync(
            await _app.Api.PostJsonAsync("/api/rules", new { filter = "~wq", action = "replace", replace = new { pattern = "x", replacement = new string('y', 16 * 1024) } }),
            HttpStatusCode.Created);

        // Dropped after the replace, so the echo peer sends nothing back: only the rule's results reach the hub.
        await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync("/api/rules", new { filter = "~wq", action = "drop" }), HttpStatusCode.Created);
        var (client, _, flow) = await _app.ConnectAsync();
        await using var c = client;
        var (hub, feed) = await SubscribeAsync(flow.Id);
        await using var h = hub;
        hub.PauseReading();

        for (var i = 0; i < Count; i++)
        {
            await client.SendTextAsync(wire);
        }

        await Eventually.AssertAsync(() => flow.WebSocket!.Find(Count - 1) is { Dropped: true }, "the rules ran on every message");
        Assert.True(feed.Dropped > 0, $"rule results were discarded (queued {feed.QueuedBytes} bytes in {feed.Queued} events)");
        Assert.InRange(feed.HighWaterBytes, EditSize, Limit);

        // Each message reaches the client in its final state, as an add or a change, up to the gap.
        hub.ResumeReading();
        var cursor = await ReadChangesUntilGapAsync(hub, flow.Id, index => index < Count, m => m.GetProperty("length").GetInt32() == EditSize && m.GetProperty("dropped").GetBoolean(), (_, message) =>
        {
            Assert.Equal(grown, message.GetProperty("content").GetString());
            Assert.Equal(wire, message.GetProperty("originalContent").GetString());
            Assert.True(message.GetProperty("dropped").GetBoolean());
        });
        Assert.InRange(cursor, 1, Count - 1);
        await Eventually.AssertAsync(() => feed.Queued == 0 && feed.QueuedBytes == 0 && !feed.HasWork, "the feed drained after the gap");
    }

    private async Task<(HubTestClient Hub, ClientFeed Feed)> SubscribeAsync(string flowId)
    {
        var before = Router.Feeds.ToHashSet();
        var hub = await HubTestClient.ConnectAsync(_app.WebPort, receiveBufferSize: 4096);
        await hub.InvokeAsync("SubscribeFlow", flowId);
        return (hub, Assert.Single(Router.Feeds, f => !before.Contains(f)));
    }

    /// <summary>
    /// Reads until the flow's gap has come and every index below its cursor was seen in its final state (told by
    /// <paramref name="isFinal"/>, checked by <paramref name="check"/>), in a MessagesAdded or a MessagesChanged.
    /// Returns the gap's cursor.
    /// </summary>
    private static async Task<long> ReadChangesUntilGapAsync(HubTestClient hub, string flowId, Func<long, bool> expected, Func<JsonElement, bool> isFinal, Action<long, JsonElement> check)
    {
        var seen = new HashSet<long>();
        long? cursor = null;
        while (cursor is null || Enumerable.Range(0, (int)cursor.Value).Any(i => !seen.Contains(i)))
        {
            var next = await hub.ReceiveAsync();
            if (next.Target == "Gap")
            {
                Assert.Equal("flow", next.String(0));
                Assert.Equal(flowId, next.String(1));
                Assert.Null(cursor);
                cursor = next.Long(2);
                Assert.True(expected(cursor.Value));
            }
            else if (next.Target is "MessagesAdded" or "MessagesChanged" && next.String(0) == flowId)
            {
                foreach (var message in next.Array(1))
                {
                    var index = message.GetProperty("index").GetInt64();
                    if (cursor is null || index < cursor)
                    {
                        // An add can be delivered before its change was made, and a message sent while an addon is still
                        // changing it shows that addon's work in part (a replace rule's result, not yet its drop): a
                        // later change brings the rest, so only the final state is checked.
                        if (isFinal(message))
                        {
                            check(index, message);
                            seen.Add(index);
                        }
                    }
                }
            }
        }

        return cursor.Value;
    }
}
