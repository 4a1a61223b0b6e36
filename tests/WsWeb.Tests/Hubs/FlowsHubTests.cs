using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>The hub's contract over the real host, spoken as the browser would: JSON hub protocol over a WebSocket.</summary>
public sealed class FlowsHubTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    [Fact]
    public async Task Flow_list_subscriber_gets_the_flow_and_its_close_but_never_message_payloads()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeFlows");
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("payload-that-must-not-reach-the-list");
            Assert.Equal("payload-that-must-not-reach-the-list", await client.ReceiveTextAsync());
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done");
        }

        var (closed, before) = await hub.ReceiveUntilAsync(i => i.Target == "FlowClosed" && i.String(0) == flow.Id);
        Assert.True(closed.Arguments[1].GetBoolean(), "closed by the client");
        Assert.Equal(1000, closed.Arguments[2].GetInt32());
        Assert.Equal("done", closed.String(3));
        Assert.False(closed.Arguments[5].GetBoolean(), "not killed");

        var summaries = before.Where(i => i.Target == "FlowsChanged").SelectMany(i => i.Array(0)).Where(f => f.GetProperty("id").GetString() == flow.Id).ToList();
        Assert.NotEmpty(summaries);
        var last = summaries[^1];
        Assert.False(last.GetProperty("isLive").GetBoolean());
        Assert.Equal(1000, last.GetProperty("closeCode").GetInt32());
        Assert.Equal(1, last.GetProperty("messagesFromClient").GetInt64());
        Assert.Equal(1, last.GetProperty("messagesFromServer").GetInt64());

        await hub.DrainAsync(Quiet);
        Assert.DoesNotContain(hub.Received, i => i.Target is "MessagesAdded" or "MessagesChanged");
        Assert.DoesNotContain(hub.Received, i => i.Arguments.Any(a => a.GetRawText().Contains("payload-that-must-not", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Flow_subscriber_gets_only_its_flows_messages_in_order_and_nothing_after_unsubscribing()
    {
        var (client1, _, flow1) = await app.ConnectAsync();
        await using var c1 = client1;
        var (client2, _, flow2) = await app.ConnectAsync();
        await using var c2 = client2;
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        var start = await hub.InvokeAsync("SubscribeFlow", flow1.Id);
        Assert.Equal(0, start!.Value.GetInt64());

        for (var i = 0; i < 10; i++)
        {
            await client1.SendTextAsync($"one-{i}");
            await client2.SendTextAsync($"two-{i}");
        }

        for (var i = 0; i < 10; i++)
        {
            await client1.ReceiveTextAsync();
            await client2.ReceiveTextAsync();
        }

        var messages = new List<JsonElement>();
        while (messages.Count < 20)
        {
            var next = await hub.ReceiveAsync();
            Assert.Equal("MessagesAdded", next.Target);
            Assert.Equal(flow1.Id, next.String(0));
            messages.AddRange(next.Array(1));
        }

        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), messages.Select(m => m.GetProperty("index").GetInt64()));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"one-{i}"), messages.Where(m => m.GetProperty("fromClient").GetBoolean()).Select(m => m.GetProperty("content").GetString()));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"one-{i}"), messages.Where(m => !m.GetProperty("fromClient").GetBoolean()).Select(m => m.GetProperty("content").GetString()));
        Assert.Equal("utf8", messages[0].GetProperty("encoding").GetString());
        Assert.Empty(await hub.DrainAsync(Quiet));

        await hub.InvokeAsync("UnsubscribeFlow", flow1.Id);
        await client1.SendTextAsync("after unsubscribe");
        await client1.ReceiveTextAsync();
        Assert.Empty(await hub.DrainAsync(Quiet));
    }

    [Fact]
    public async Task SubscribeFlow_returns_where_live_delivery_starts_and_rejects_unknown_flows()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        for (var i = 0; i < 3; i++)
        {
            await client.SendTextAsync($"early-{i}");
            await client.ReceiveTextAsync();
        }

        await Eventually.AssertAsync(() => flow.WebSocket!.TotalCount == 6, "six messages recorded");
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        Assert.Equal(6, (await hub.InvokeAsync("SubscribeFlow", flow.Id))!.Value.GetInt64());

        await client.SendTextAsync("live");
        await client.ReceiveTextAsync();
        var indexes = new List<long>();
        while (indexes.Count < 2)
        {
            indexes.AddRange((await hub.ReceiveAsync()).Array(1).Select(m => m.GetProperty("index").GetInt64()));
        }

        Assert.Equal([6, 7], indexes);

        var error = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync("SubscribeFlow", "no-such-flow"));
        Assert.Contains("no-such-flow was not found", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Messages_are_batched_at_high_rate()
    {
        const int count = 5000;
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeFlow", flow.Id);

        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                await client.SendTextAsync($"m{i}");
            }
        });
        var indexes = new List<long>(2 * count);
        var invocations = 0;
        while (indexes.Count < 2 * count)
        {
            var next = await hub.ReceiveAsync();
            Assert.Equal("MessagesAdded", next.Target);
            var batch = next.Array(1);
            Assert.InRange(batch.Length, 1, 500);
            indexes.AddRange(batch.Select(m => m.GetProperty("index").GetInt64()));
            invocations++;
        }

        await sending;
        Assert.Equal(Enumerable.Range(0, 2 * count).Select(i => (long)i), indexes);

        // One call per tick (100 ms) or per 500 messages: a few dozen calls, not 10,000.
        Assert.True(invocations <= 2 * count / 20, $"{invocations} MessagesAdded calls for {2 * count} messages");
    }

    [Fact]
    public async Task FlowClosed_tells_flow_subscribers_who_closed_with_which_code_and_reason_or_that_it_was_killed()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        var (client, server, flow) = await app.ConnectAsync();
        await using (client)
        {
            await hub.InvokeAsync("SubscribeFlow", flow.Id);
            await client.CloseAsync((WebSocketCloseStatus)4001, "bye now");
            Assert.Equal((WebSocketCloseStatus)4001, (await server.CloseReceived.Task).Status);
        }

        var (closed, _) = await hub.ReceiveUntilAsync(i => i.Target == "FlowClosed");
        Assert.Equal(flow.Id, closed.String(0));
        Assert.True(closed.Arguments[1].GetBoolean());
        Assert.Equal(4001, closed.Arguments[2].GetInt32());
        Assert.Equal("bye now", closed.String(3));
        Assert.Equal(flow.WebSocket!.TimestampEnd!.Value, closed.Arguments[4].GetDouble(), 3);
        Assert.False(closed.Arguments[5].GetBoolean());

        var (victim, _, killedFlow) = await app.ConnectAsync();
        await using (victim)
        {
            await hub.InvokeAsync("SubscribeFlow", killedFlow.Id);
            Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostAsync(new Uri($"/api/flows/{killedFlow.Id}/kill", UriKind.Relative), null)).StatusCode);
            var (killed, _) = await hub.ReceiveUntilAsync(i => i.Target == "FlowClosed" && i.String(0) == killedFlow.Id);
            Assert.False(killed.Arguments[1].GetBoolean());
            Assert.Equal(1006, killed.Arguments[2].GetInt32());
            Assert.True(killed.Arguments[5].GetBoolean(), "killed");
        }
    }

    [Fact]
    public async Task HeldChanged_sends_the_held_list_when_intercept_holds_and_when_it_is_released()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeIntercept");
        var initial = await hub.ReceiveAsync();
        Assert.Equal("HeldChanged", initial.Target);
        Assert.Empty(initial.Array(0));

        var state = await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b hold-me" });
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await hub.InvokeAsync("SubscribeFlow", flow.Id);
        await client.SendTextAsync("please hold-me");

        var (heldNow, _) = await hub.ReceiveUntilAsync(i => i.Target == "HeldChanged" && i.Array(0).Length == 1);
        var held = heldNow.Array(0)[0];
        Assert.Equal(flow.Id, held.GetProperty("flowId").GetString());
        Assert.Equal("please hold-me", held.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("held", held.GetProperty("message").GetProperty("resolution").GetString());

        // The same shape as GET /api/intercept/held.
        var rest = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"));
        Assert.Equal(rest[0].GetRawText(), held.GetRawText());

        var index = held.GetProperty("index").GetInt64();
        var released = await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "please [edited]" });
        Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        Assert.Equal("please [edited]", await client.ReceiveTextAsync());

        var (empty, _) = await hub.ReceiveUntilAsync(i => i.Target == "HeldChanged" && i.Array(0).Length == 0);
        Assert.NotNull(empty);
        await Eventually.AssertAsync(
            () => hub.Received.Any(i => i.Target == "MessagesChanged" && i.Array(1).Any(m => m.GetProperty("index").GetInt64() == index && m.GetProperty("resolution").GetString() == "edited")),
            "the flow subscriber sees the edit as a MessagesChanged");
        var changed = hub.Received.Last(i => i.Target == "MessagesChanged").Array(1).Single(m => m.GetProperty("index").GetInt64() == index);
        Assert.Equal("please [edited]", changed.GetProperty("content").GetString());
        Assert.Equal("please hold-me", changed.GetProperty("originalContent").GetString());
        Assert.Single(server.Texts, "please [edited]");
    }

    [Fact]
    public async Task SubscribeInterceptCounts_sends_how_many_are_held_by_flow_and_never_the_messages()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeInterceptCounts");
        var (initial, _) = await hub.ReceiveUntilAsync(i => i.Target == "HeldCounts");
        Assert.Equal(System.Text.Json.JsonValueKind.Object, initial.Arguments[0].ValueKind);
        Assert.Empty(initial.Arguments[0].EnumerateObject());

        var state = await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b count-me" });
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("count-me 1");
        await client.SendTextAsync("count-me 2");

        // Held one after the other (the second waits behind the first): the count by flow follows.
        var (one, _) = await hub.ReceiveUntilAsync(i => i.Target == "HeldCounts" && i.Arguments[0].TryGetProperty(flow.Id, out var n) && n.GetInt32() == 1);
        Assert.Single(one.Arguments[0].EnumerateObject());
        await app.Api.PostAsync(new Uri("/api/intercept/held/release", UriKind.Relative), null);
        await hub.ReceiveUntilAsync(i => i.Target == "HeldCounts" && i.Arguments[0].TryGetProperty(flow.Id, out var n) && n.GetInt32() == 1);
        await app.Api.PostAsync(new Uri("/api/intercept/held/release", UriKind.Relative), null);
        await hub.ReceiveUntilAsync(i => i.Target == "HeldCounts" && !i.Arguments[0].EnumerateObject().Any());
        Assert.DoesNotContain(hub.Received, i => i.Target == "HeldChanged");
        Assert.Contains(hub.Received, i => i.Target == "InterceptChanged");
    }

    [Fact]
    public async Task HeldChanged_carries_previews_so_releasing_large_held_messages_one_by_one_stays_small()
    {
        // The review's repro, scaled to the test host's 1 MiB message limit: HeldChanged resends the whole list on
        // every change, so with full contents releasing 6 held messages of ~1 MB one by one pushed 21 MB.
        const int Connections = 6;
        const int Size = 1_000_000;
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeIntercept");
        Assert.Empty((await hub.ReceiveAsync()).Array(0));
        var state = await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b hold" });
        Assert.Equal(HttpStatusCode.OK, state.StatusCode);

        var peers = new List<(ClientPeer Client, string Text)>();
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var (client, _, _) = await app.ConnectAsync();
                var text = $"hold{i}" + new string((char)('a' + i), Size);
                peers.Add((client, text));
                await client.SendTextAsync(text);
            }

            var (full, _) = await hub.ReceiveUntilAsync(i => i.Target == "HeldChanged" && i.Array(0).Length == Connections);
            foreach (var held in full.Array(0))
            {
                var message = held.GetProperty("message");
                Assert.True(held.GetProperty("truncated").GetBoolean());
                Assert.Equal(Size + 5, message.GetProperty("length").GetInt32());
                var preview = message.GetProperty("content").GetString()!;
                Assert.Equal(4096, preview.Length);
                var (_, text) = Assert.Single(peers, p => p.Text.StartsWith(preview, StringComparison.Ordinal));

                // The whole content is one REST read away.
                var flowId = held.GetProperty("flowId").GetString();
                var whole = await app.Api.GetAsync($"/api/flows/{flowId}/messages/{held.GetProperty("index").GetInt64()}/content");
                Assert.Equal(text, await whole.Content.ReadAsStringAsync());
            }

            foreach (var held in full.Array(0))
            {
                var released = await app.Api.PostAsync(new Uri($"/api/intercept/held/{held.GetProperty("flowId").GetString()}/{held.GetProperty("index").GetInt64()}/release", UriKind.Relative), null);
                Assert.Equal(HttpStatusCode.OK, released.StatusCode);
            }

            // Released unchanged, each message goes on whole although the hub only ever showed its preview.
            foreach (var (client, text) in peers)
            {
                Assert.Equal(text, await client.ReceiveTextAsync());
            }

            await hub.ReceiveUntilAsync(i => i.Target == "HeldChanged" && i.Array(0).Length == 0);
            var pushes = hub.Received.Where(i => i.Target == "HeldChanged").ToList();
            var largest = pushes.Max(i => i.Arguments[0].GetRawText().Length);
            Assert.True(largest < Connections * 5 * 1024, $"a HeldChanged of {largest} characters for {Connections} held messages");
            var total = pushes.Sum(i => (long)i.Arguments[0].GetRawText().Length);
            Assert.True(total < pushes.Count * (long)Connections * 5 * 1024, $"{pushes.Count} HeldChanged calls carried {total} characters");
        }
        finally
        {
            foreach (var (client, _) in peers)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task The_hub_is_not_reachable_through_the_proxy_port()
    {
        // Straight to the proxy listener: the proxy middleware answers, SignalR never sees it.
        await Assert.ThrowsAnyAsync<Exception>(() => HubTestClient.ConnectAsync(app.ProxyPort));

        // Through the proxy to the web listener: refused as a request to our own listener.
        using var socket = new ClientWebSocket();
        socket.Options.Proxy = new WebProxy(app.ProxyUri);
        var refused = await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://127.0.0.1:{app.WebPort}/hubs/flows"), CancellationToken.None));
        Assert.True(refused.ToString().Contains("403", StringComparison.Ordinal), refused.ToString());

        // And the hub is there on the web listener.
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeFlows");
    }
}
