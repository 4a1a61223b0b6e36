using System.Net;
using WsWeb.Rules;
using WsWeb.Tests.Hubs;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Rules;

/// <summary>
/// Through the real proxy (1 MiB maximum message size): a replace whose result would pass the maximum leaves the
/// message as it was, logs why, and later rules still run. Built whole, the text example below is 655 MB.
/// </summary>
public sealed class ReplaceRuleThroughProxyTests(LoggedWsWebApp host) : IClassFixture<LoggedWsWebApp>, IAsyncLifetime
{
    private WsWebApp App => host.App;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => App.ResetAsync();

    private async Task<string> CreateAsync(object body) =>
        (await ApiAssert.JsonAsync(await App.Api.PostJsonAsync("/api/rules", body), HttpStatusCode.Created)).GetProperty("id").GetString()!;

    [Fact]
    public async Task A_text_replace_that_would_grow_past_the_maximum_leaves_the_message_and_the_next_rule_runs()
    {
        var grow = await CreateAsync(new { name = "grow", filter = "~wq & ~text", action = "replace", replace = new { pattern = "(a)", replacement = "$1" + new string('b', RuleCompiler.MaxReplacementLength - 2) } });
        var mark = await CreateAsync(new { name = "mark the end", filter = "~wq & ~text", action = "replace", replace = new { pattern = "a$", replacement = "!" } });
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;

        await client.SendTextAsync(new string('a', 40_000));

        var expected = new string('a', 39_999) + "!";
        Assert.Equal(expected, await client.ReceiveTextAsync());
        Assert.Equal([expected], server.Texts.ToList());
        Assert.True(flow.IsLive);
        await AssertHitsAsync((grow, 0), (mark, 1));
        AssertLogged(flow.Id, "grow");
    }

    [Fact]
    public async Task A_binary_replace_that_would_grow_past_the_maximum_leaves_the_message()
    {
        // 200 bytes, each becoming 8 KiB: 1.6 MB.
        await CreateAsync(new { name = "grow bytes", filter = "~wq & ~binary", action = "replace", replace = new { pattern = "ca", replacement = new string('0', RuleCompiler.MaxReplacementLength), binary = true } });
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        var content = Enumerable.Repeat((byte)0xca, 200).ToArray();

        await client.SendBinaryAsync(content);

        Assert.Equal(content, (await client.ReceiveAsync()).Data);
        Assert.Equal(content, Assert.Single(server.Received).Data);
        Assert.False(flow.WebSocket!.Messages[0].IsModified);
        AssertLogged(flow.Id, "grow bytes");
    }

    private async Task AssertHitsAsync(params (string Id, long Hits)[] expected)
    {
        var rules = await ApiAssert.JsonAsync(await App.Api.GetAsync("/api/rules"));
        var hits = rules.EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("hits").GetInt64());
        foreach (var (id, count) in expected)
        {
            Assert.Equal(count, hits[id]);
        }
    }

    private void AssertLogged(string flowId, string rule)
    {
        var entry = Assert.Single(host.Log.Entries, e => e.Category == typeof(RulesAddon).FullName && e.Message.Contains($"Flow {flowId},", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Equal($"Flow {flowId}, message 0: rule '{rule}' left the message unchanged: the result would be more than the maximum message size (1048576 bytes).", entry.Message);
    }
}
