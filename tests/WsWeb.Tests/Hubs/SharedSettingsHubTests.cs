using System.Net;
using System.Net.Http.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>RulesChanged, RuleHits and InterceptChanged: every open page learns of a teammate's change without reloading.</summary>
public sealed class SharedSettingsHubTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    [Fact]
    public async Task SubscribeRules_sends_the_list_then_every_create_change_and_delete()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeRules");
        var (initial, _) = await hub.ReceiveUntilAsync(i => i.Target == "RulesChanged");
        Assert.Empty(initial.Array(0));

        var created = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { name = "r1", filter = "~wq", action = "drop", enabled = false }), HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString()!;
        var (afterCreate, _) = await hub.ReceiveUntilAsync(i => i.Target == "RulesChanged");
        var rule = Assert.Single(afterCreate.Array(0));
        Assert.Equal(created.GetRawText(), rule.GetRawText());

        var patched = await app.Api.PatchAsync(new Uri($"/api/rules/{id}", UriKind.Relative), JsonContent.Create(new { enabled = true }));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var (afterToggle, _) = await hub.ReceiveUntilAsync(i => i.Target == "RulesChanged");
        Assert.True(afterToggle.Array(0).Single().GetProperty("enabled").GetBoolean());
        Assert.Equal(2, afterToggle.Array(0).Single().GetProperty("version").GetInt64());

        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.DeleteAsync(new Uri($"/api/rules/{id}", UriKind.Relative))).StatusCode);
        var (afterDelete, _) = await hub.ReceiveUntilAsync(i => i.Target == "RulesChanged");
        Assert.Empty(afterDelete.Array(0));
    }

    [Fact]
    public async Task RuleHits_follow_the_counters_coalesced_not_one_call_per_message()
    {
        var created = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~wq & ~b count-me", action = "replace", replace = new { pattern = "me", replacement = "you" } }), HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString()!;
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeRules");
        var (client, _, _) = await app.ConnectAsync();
        await using var c = client;

        const int Messages = 300;
        for (var i = 0; i < Messages; i++)
        {
            await client.SendTextAsync($"count-me {i}");
        }

        for (var i = 0; i < Messages; i++)
        {
            await client.ReceiveTextAsync();
        }

        // Each RuleHits carries the latest counters of the rules that moved; the last one reaches all 300.
        await hub.ReceiveUntilAsync(i => i.Target == "RuleHits" && i.Array(0).Any(r => r.GetProperty("id").GetString() == id && r.GetProperty("hits").GetInt64() == Messages));
        var calls = hub.Received.Count(i => i.Target == "RuleHits");
        Assert.True(calls < Messages / 3, $"{calls} RuleHits calls for {Messages} hits: the feed should send at most one per tick");
    }

    [Fact]
    public async Task SubscribeIntercept_sends_the_settings_and_each_change_with_its_version()
    {
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeIntercept");
        var (initial, _) = await hub.ReceiveUntilAsync(i => i.Target == "InterceptChanged");
        Assert.False(initial.Arguments[0].GetProperty("enabled").GetBoolean());
        var version = initial.Arguments[0].GetProperty("version").GetInt64();

        var set = await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~ws", timeoutSeconds = 30, timeoutAction = "drop" }));
        var (changed, _) = await hub.ReceiveUntilAsync(i => i.Target == "InterceptChanged");
        var state = changed.Arguments[0];
        Assert.Equal("~ws", state.GetProperty("filter").GetString());
        Assert.Equal(30, state.GetProperty("timeoutSeconds").GetDouble());
        Assert.Equal("drop", state.GetProperty("timeoutAction").GetString());
        Assert.Equal(version + 1, state.GetProperty("version").GetInt64());
        Assert.Equal(set.GetRawText(), state.GetRawText());

        await app.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative));
        var (cleared, _) = await hub.ReceiveUntilAsync(i => i.Target == "InterceptChanged");
        Assert.False(cleared.Arguments[0].GetProperty("enabled").GetBoolean());
        Assert.Equal(version + 2, cleared.Arguments[0].GetProperty("version").GetInt64());
    }
}
