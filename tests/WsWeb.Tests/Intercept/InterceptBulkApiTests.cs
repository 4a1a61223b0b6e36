using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Intercept;

/// <summary>POST /api/intercept/held/release and /drop: every held message at once, or those a filter matches.</summary>
public sealed class InterceptBulkApiTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    // A message a previous test left held would be counted.
    public Task InitializeAsync() => app.ResetAndDropHeldAsync();

    public Task DisposeAsync() => app.ResetAndDropHeldAsync();

    private async Task SetInterceptAsync(string filter) =>
        Assert.True((await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter }))).GetProperty("enabled").GetBoolean());

    private Task<HttpResponseMessage> PostAsync(string url) => app.Api.PostAsync(new Uri(url, UriKind.Relative), null);

    private async Task<List<string>> HeldFlowsAsync() =>
        [.. (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray().Select(h => h.GetProperty("flowId").GetString()!)];

    private async Task<JsonElement> MessageAsync(string flowId, long index) =>
        (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flowId}/messages?after={index - 1}&limit=1"))).GetProperty("messages")[0];

    /// <summary>Two flows, each with a held message ("hold …") and a later one waiting behind it.</summary>
    private Task<(ClientPeer Client, PeerConnection Server, string FlowId, long Index)[]> HoldTwoAsync() =>
        app.HoldOnePerFlowAsync("~wq & ~b hold", ["a", "b"], name => [$"hold {name}1", $"{name}2"]);

    [Fact]
    public async Task Release_all_forwards_every_held_message_unchanged_in_order_and_answers_the_count()
    {
        var flows = await HoldTwoAsync();
        try
        {
            Assert.All(flows, f => Assert.Empty(f.Server.Received));

            var answer = await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/release"));
            Assert.Equal(2, answer.GetProperty("released").GetInt32());

            foreach (var (client, server, flowId, index) in flows)
            {
                var name = flowId == flows[0].FlowId ? "a" : "b";
                // The echo peer answers each in turn: the held message first, then the one that waited behind it.
                Assert.Equal($"hold {name}1", await client.ReceiveTextAsync());
                Assert.Equal($"{name}2", await client.ReceiveTextAsync());
                Assert.Equal([$"hold {name}1", $"{name}2"], server.Texts.ToList());
                var message = await MessageAsync(flowId, index);
                Assert.Equal("released", message.GetProperty("resolution").GetString());
                Assert.False(message.GetProperty("edited").GetBoolean());
            }

            Assert.Empty(await HeldFlowsAsync());
            // Nothing left: a second call releases none.
            Assert.Equal(0, (await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/release"))).GetProperty("released").GetInt32());
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Drop_all_drops_every_held_message_and_answers_the_count()
    {
        var flows = await HoldTwoAsync();
        try
        {
            var answer = await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/drop"));
            Assert.Equal(2, answer.GetProperty("dropped").GetInt32());

            foreach (var (client, server, flowId, index) in flows)
            {
                var name = flowId == flows[0].FlowId ? "a" : "b";
                // The held message never reaches the server; the one behind it goes on.
                Assert.Equal($"{name}2", await client.ReceiveTextAsync());
                Assert.Equal([$"{name}2"], server.Texts.ToList());
                var message = await MessageAsync(flowId, index);
                Assert.Equal("dropped", message.GetProperty("resolution").GetString());
                Assert.True(message.GetProperty("dropped").GetBoolean());
            }

            Assert.Empty(await HeldFlowsAsync());
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_filter_limits_release_all_and_drop_all_to_the_held_messages_it_matches()
    {
        var flows = await HoldTwoAsync();
        try
        {
            var (a, b) = (flows[0], flows[1]);
            var released = await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/release?filter=" + Uri.EscapeDataString("~b \"hold a\"")));
            Assert.Equal(1, released.GetProperty("released").GetInt32());
            Assert.Equal("hold a1", await a.Client.ReceiveTextAsync());
            Assert.Equal([b.FlowId], await HeldFlowsAsync());
            Assert.Empty(b.Server.Received);

            // A filter that matches nothing held decides nothing.
            Assert.Equal(0, (await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/drop?filter=" + Uri.EscapeDataString("~b nomatch")))).GetProperty("dropped").GetInt32());
            Assert.Equal([b.FlowId], await HeldFlowsAsync());

            var dropped = await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/drop?filter=" + Uri.EscapeDataString("~b \"hold b\"")));
            Assert.Equal(1, dropped.GetProperty("dropped").GetInt32());
            Assert.Equal("b2", await b.Client.ReceiveTextAsync());
            Assert.Equal(["b2"], b.Server.Texts.ToList());
            Assert.Equal("dropped", (await MessageAsync(b.FlowId, b.Index)).GetProperty("resolution").GetString());
            Assert.Equal("released", (await MessageAsync(a.FlowId, a.Index)).GetProperty("resolution").GetString());
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_bad_filter_is_a_400_naming_filter_and_decides_nothing()
    {
        var flows = await HoldTwoAsync();
        try
        {
            foreach (var action in new[] { "release", "drop" })
            {
                await ApiAssert.InvalidFieldAsync(await PostAsync($"/api/intercept/held/{action}?filter=" + Uri.EscapeDataString("~nosuchthing")), "filter");
                await ApiAssert.InvalidFieldAsync(await PostAsync($"/api/intercept/held/{action}?filter=" + Uri.EscapeDataString("~b (")), "filter");
            }

            Assert.Equal(flows.Select(f => f.FlowId).ToList(), await HeldFlowsAsync());
            Assert.All(flows, f => Assert.Empty(f.Server.Received));
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Turning_intercept_off_leaves_held_messages_held_for_release_all()
    {
        var flows = await HoldTwoAsync();
        try
        {
            var state = await ApiAssert.JsonAsync(await app.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative)));
            Assert.False(state.GetProperty("enabled").GetBoolean());
            Assert.Equal(2, state.GetProperty("held").GetInt32());
            Assert.True(await flows[0].Client.NothingArrivesAsync(TimeSpan.FromMilliseconds(200)));

            Assert.Equal(2, (await ApiAssert.JsonAsync(await PostAsync("/api/intercept/held/release"))).GetProperty("released").GetInt32());
            Assert.Equal("hold a1", await flows[0].Client.ReceiveTextAsync());
            Assert.Equal("hold b1", await flows[1].Client.ReceiveTextAsync());
        }
        finally
        {
            foreach (var f in flows) await f.Client.DisposeAsync();
        }
    }
}
