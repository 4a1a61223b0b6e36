using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Rules;

public sealed class RulesApiTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    private async Task<JsonElement> CreateAsync(object body) =>
        await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", body), HttpStatusCode.Created);

    [Fact]
    public async Task Rules_drop_and_rewrite_while_2000_messages_flow()
    {
        var drop = await CreateAsync(new { name = "no noise", filter = "~wq & ~b noise", action = "drop" });
        var rewrite = await CreateAsync(new { name = "alice to bob", filter = "~wq & ~text", action = "replace", replace = new { pattern = "alice(\\d+)", replacement = "bob$1" } });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        const int Count = 2000;
        var expected = new List<string>();
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                await client.SendTextAsync(i % 4 == 0 ? $"noise {i}" : $"alice{i} says hi");
            }
        });
        for (var i = 0; i < Count; i++)
        {
            if (i % 4 != 0)
            {
                expected.Add($"bob{i} says hi");
            }
        }

        var echoed = new List<string>();
        for (var i = 0; i < expected.Count; i++)
        {
            echoed.Add(await client.ReceiveTextAsync());
        }

        await send;
        Assert.Equal(expected, echoed);
        Assert.Equal(expected, server.Texts.ToList());
        Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(100)));

        var rules = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"));
        var hits = rules.EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("hits").GetInt64());
        Assert.Equal(Count / 4, hits[drop.GetProperty("id").GetString()!]);
        Assert.Equal(Count * 3 / 4, hits[rewrite.GetProperty("id").GetString()!]);

        var first = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?limit=2"))).GetProperty("messages");
        Assert.True(first[0].GetProperty("dropped").GetBoolean());
        Assert.Equal("bob1 says hi", first[1].GetProperty("content").GetString());
        Assert.Equal("alice1 says hi", first[1].GetProperty("originalContent").GetString());
        Assert.True(first[1].GetProperty("edited").GetBoolean());
    }

    [Fact]
    public async Task A_filter_regex_that_times_out_counts_as_no_match_and_the_rule_shows_it()
    {
        // Exponential backtracking on 3000 'a's and a '!': the match runs into the 100 ms timeout.
        var created = await CreateAsync(new { name = "slow", filter = "~b \"^(a|aa)+$\"", action = "drop" });
        var id = created.GetProperty("id").GetString();
        Assert.Equal(0, created.GetProperty("filterTimeouts").GetInt64());
        var (client, _, _) = await app.ConnectAsync();
        await using var c = client;
        var text = new string('a', 3000) + "!";

        await client.SendTextAsync(text);

        // Not dropped either way (the echo comes back): the proxy keeps flowing, and the rule says its filter could not decide.
        Assert.Equal(text, await client.ReceiveTextAsync());
        var rule = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"));
        Assert.Equal(0, rule.GetProperty("hits").GetInt64());
        Assert.True(rule.GetProperty("filterTimeouts").GetInt64() >= 1, rule.ToString());
    }

    [Fact]
    public async Task Binary_replace_rewrites_a_byte_pattern()
    {
        await CreateAsync(new { filter = "~wq & ~binary", action = "replace", replace = new { pattern = "ca fe", replacement = "be ef 00", binary = true } });
        var (client, server, _) = await app.ConnectAsync();
        await using var c = client;
        await client.SendBinaryAsync([1, 0xca, 0xfe, 2, 0xca, 0xfe]);
        Assert.Equal(new byte[] { 1, 0xbe, 0xef, 0, 2, 0xbe, 0xef, 0 }, (await client.ReceiveAsync()).Data);
        Assert.Equal(new byte[] { 1, 0xbe, 0xef, 0, 2, 0xbe, 0xef, 0 }, Assert.Single(server.Received).Data);
    }

    [Fact]
    public async Task Delay_rule_holds_a_message_back_for_its_time()
    {
        await CreateAsync(new { filter = "~wq & ~b slow", action = "delay", delayMs = 300 });
        var (client, _, _) = await app.ConnectAsync();
        await using var c = client;
        var started = DateTime.UtcNow;
        await client.SendTextAsync("slow one");
        Assert.Equal("slow one", await client.ReceiveTextAsync());
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(280));
    }

    [Fact]
    public async Task Hold_rule_holds_without_an_intercept_filter()
    {
        await CreateAsync(new { filter = "~wq & ~b wait", action = "hold" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("wait for me");
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 1, "the message was recorded");
        JsonElement held = default;
        await Eventually.AssertAsync(() =>
        {
            held = app.Api.GetFromJsonAsync<JsonElement>(new Uri("/api/intercept/held", UriKind.Relative)).GetAwaiter().GetResult();
            return held.EnumerateArray().Any(h => h.GetProperty("flowId").GetString() == flow.Id);
        }, "the rule held the message");
        Assert.Empty(server.Received);
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/0/release", UriKind.Relative), null));
        Assert.Equal("wait for me", await client.ReceiveTextAsync());
    }

    [Fact]
    public async Task Crud_round_trip_keeps_the_hit_counter_and_disabled_rules_do_nothing()
    {
        var created = await app.Api.PostJsonAsync("/api/rules", new { name = "x", filter = "~wq", action = "drop" });
        var rule = await ApiAssert.JsonAsync(created, HttpStatusCode.Created);
        var id = rule.GetProperty("id").GetString()!;
        Assert.Equal($"/api/rules/{id}", created.Headers.Location?.OriginalString);
        Assert.True(rule.GetProperty("enabled").GetBoolean());
        Assert.Equal(0, rule.GetProperty("hits").GetInt64());

        var (client, server, _) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("gone");
        await Eventually.AssertAsync(() => app.Api.GetFromJsonAsync<JsonElement>(new Uri($"/api/rules/{id}", UriKind.Relative)).GetAwaiter().GetResult().GetProperty("hits").GetInt64() == 1, "the rule hit");

        var updated = await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri($"/api/rules/{id}", UriKind.Relative), new { name = "y", filter = "~wq", action = "drop", enabled = false }));
        Assert.Equal("y", updated.GetProperty("name").GetString());
        Assert.False(updated.GetProperty("enabled").GetBoolean());
        Assert.Equal(1, updated.GetProperty("hits").GetInt64());

        await client.SendTextAsync("through");
        Assert.Equal("through", await client.ReceiveTextAsync());
        Assert.Equal(["through"], server.Texts.ToList());

        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.DeleteAsync(new Uri($"/api/rules/{id}", UriKind.Relative))).StatusCode);
        await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/rules/{id}"), HttpStatusCode.NotFound);
        await ApiAssert.ProblemAsync(await app.Api.DeleteAsync(new Uri($"/api/rules/{id}", UriKind.Relative)), HttpStatusCode.NotFound);
        await ApiAssert.ProblemAsync(await app.Api.PutAsJsonAsync(new Uri($"/api/rules/{id}", UriKind.Relative), new { filter = "~wq", action = "drop" }), HttpStatusCode.NotFound);
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).EnumerateArray());
    }

    [Fact]
    public async Task A_put_of_the_same_definition_keeps_the_version_and_a_different_one_moves_it()
    {
        var id = (await CreateAsync(new { name = "same", filter = "~wq", action = "delay", delayMs = 5 })).GetProperty("id").GetString()!;
        var uri = new Uri($"/api/rules/{id}", UriKind.Relative);
        for (var i = 0; i < 3; i++)
        {
            // A script that sends the rule it wants every time: the teammate's If-Match on version 1 stays good.
            var again = await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(uri, new { name = "same", filter = "~wq", action = "delay", delayMs = 5 }));
            Assert.Equal(1, again.GetProperty("version").GetInt64());
        }

        var changed = await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(uri, new { name = "same", filter = "~wq", action = "delay", delayMs = 6 }));
        Assert.Equal(2, changed.GetProperty("version").GetInt64());
        Assert.Equal(6, changed.GetProperty("delayMs").GetInt32());
    }

    [Theory]
    [InlineData("drop", "delayMs")]
    [InlineData("hold", "delayMs")]
    [InlineData("drop", "replace")]
    [InlineData("delay", "replace")]
    public async Task A_field_the_action_does_not_use_is_a_400_naming_it_and_no_rule_is_made(string action, string field)
    {
        object body = field == "delayMs"
            ? new { filter = "~ws", action, delayMs = 500 }
            : new { filter = "~ws", action, delayMs = action == "delay" ? 500 : (int?)null, replace = new { pattern = "a", replacement = "b" } };
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync("/api/rules", body), field);
        Assert.StartsWith($"{field} is only for the {(field == "delayMs" ? "delay" : "replace")} action; a {action} rule does not use it.", message, StringComparison.Ordinal);
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).EnumerateArray());

        // As GET answers a rule, with nulls for what it does not use, it is accepted.
        await CreateAsync(new { filter = "~ws", action, delayMs = action == "delay" ? 500 : (int?)null, replace = (object?)null });
    }

    [Fact]
    public async Task A_replace_that_would_split_a_character_leaves_the_message_and_later_rules_still_run()
    {
        // .NET regexes see UTF-16: "(.)" takes each half of an emoji on its own.
        var spacer = await CreateAsync(new { name = "space out", filter = "~wq & ~text", action = "replace", replace = new { pattern = "(.)", replacement = "$1 " } });
        var drop = await CreateAsync(new { name = "no secrets", filter = "~wq & ~b secret", action = "drop" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        await client.SendTextAsync("ab");
        Assert.Equal("a b ", await client.ReceiveTextAsync());
        await client.SendTextAsync("secret 😀");
        await client.SendTextAsync("cd");
        Assert.Equal("c d ", await client.ReceiveTextAsync());

        Assert.Equal(["a b ", "c d "], server.Texts.ToList());
        var recorded = flow.WebSocket!.Messages.Where(m => m.FromClient).ToList();
        Assert.True(recorded[1].Dropped);
        Assert.Equal("secret 😀", recorded[1].Text);
        Assert.False(recorded[1].IsModified);
        var hits = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).EnumerateArray().ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("hits").GetInt64());
        Assert.Equal(2, hits[spacer.GetProperty("id").GetString()!]);
        Assert.Equal(1, hits[drop.GetProperty("id").GetString()!]);
    }

    [Fact]
    public async Task A_replace_that_would_outgrow_the_maximum_message_size_leaves_the_message_as_it_was()
    {
        await CreateAsync(new { filter = "~wq & ~b grow", action = "replace", replace = new { pattern = "x", replacement = "xx" } });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        var text = "grow " + new string('x', 600_000);   // doubled it would pass the test host's 1 MiB limit

        await client.SendTextAsync(text);

        Assert.Equal(text, await client.ReceiveTextAsync());
        Assert.Equal([text], server.Texts.ToList());
        Assert.True(flow.IsLive);
        Assert.False(flow.WebSocket!.Messages[0].IsModified);
    }

    [Fact]
    public async Task Updating_a_rule_while_messages_flow_loses_no_hits()
    {
        var rule = await CreateAsync(new { name = "count", filter = "~wq", action = "replace", replace = new { pattern = "^$", replacement = "" } });
        var id = rule.GetProperty("id").GetString()!;
        var (client, _, _) = await app.ConnectAsync();
        await using var c = client;
        const int Count = 3000;

        using var stop = new CancellationTokenSource();
        var updates = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await app.Api.PutAsJsonAsync(new Uri($"/api/rules/{id}", UriKind.Relative), new { name = "count", filter = "~wq", action = "replace", replace = new { pattern = "^$", replacement = "" } });
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        });
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < Count; i++)
            {
                await client.SendTextAsync($"m{i}");
            }
        });
        for (var i = 0; i < Count; i++)
        {
            await client.ReceiveTextAsync();
        }

        await send;
        await stop.CancelAsync();
        await updates;
        var hits = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"))).GetProperty("hits").GetInt64();
        Assert.Equal(Count, hits);
    }

    [Theory]
    [InlineData("""{"action":"drop"}""", "filter")]
    [InlineData("""{"filter":"~zz","action":"drop"}""", "filter")]
    [InlineData("""{"filter":"~wq","action":"explode"}""", "action")]
    [InlineData("""{"filter":"~wq"}""", "action")]
    [InlineData("""{"filter":"~wq","action":"replace"}""", "replace")]
    [InlineData("""{"filter":"~wq","action":"replace","replace":{"pattern":"(","replacement":""}}""", "replace.pattern")]
    [InlineData("""{"filter":"~wq","action":"replace","replace":{"replacement":"x"}}""", "replace.pattern")]
    [InlineData("""{"filter":"~wq","action":"replace","replace":{"pattern":"a"}}""", "replace.replacement")]
    [InlineData("""{"filter":"~wq","action":"replace","replace":{"pattern":"zz","replacement":"00","binary":true}}""", "replace.pattern")]
    [InlineData("""{"filter":"~wq","action":"replace","replace":{"pattern":"00","replacement":"0","binary":true}}""", "replace.replacement")]
    [InlineData("""{"filter":"~wq","action":"delay"}""", "delayMs")]
    [InlineData("""{"filter":"~wq","action":"delay","delayMs":0}""", "delayMs")]
    [InlineData("""{"filter":"~wq","action":"delay","delayMs":60001}""", "delayMs")]
    public async Task Bad_rules_are_a_400_naming_the_field(string body, string field)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        await ApiAssert.InvalidFieldAsync(await app.Api.PostAsync(new Uri("/api/rules", UriKind.Relative), content), field);
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).EnumerateArray());
    }

    [Fact]
    public async Task Bad_filter_reports_the_position()
    {
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~wq & ~zz", action = "drop" }), "filter");
        Assert.Equal("unknown operator '~zz' at position 6", message);
    }
    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    public async Task A_body_that_is_not_json_is_a_415_naming_Content_Type(string? contentType)
    {
        using var content = new ByteArrayContent("""{"filter":"~wq","action":"drop"}"""u8.ToArray());
        if (contentType is not null)
        {
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        var problem = await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri("/api/rules", UriKind.Relative), content), HttpStatusCode.UnsupportedMediaType);
        var errors = problem.GetProperty("errors");
        Assert.Equal(["Content-Type"], errors.EnumerateObject().Select(e => e.Name));
    }

    [Fact]
    public async Task A_rule_moves_in_the_order_rules_run_in_and_a_bad_place_names_index()
    {
        var first = (await CreateAsync(new { name = "first", filter = "~wq", action = "delay", delayMs = 1 })).GetProperty("id").GetString()!;
        var second = (await CreateAsync(new { name = "second", filter = "~wq", action = "delay", delayMs = 1 })).GetProperty("id").GetString()!;
        var third = (await CreateAsync(new { name = "third", filter = "~wq", action = "delay", delayMs = 1 })).GetProperty("id").GetString()!;

        var moved = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/rules/{third}/move", new { index = 0 }));
        Assert.Equal([third, first, second], moved.EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        Assert.Equal([third, first, second], app.Services.GetRequiredService<WsWeb.Rules.RuleStore>().Rules.Select(r => r.Id));
        Assert.Equal(1, moved[0].GetProperty("version").GetInt64());   // where it runs is not its definition

        var last = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/rules/{third}/move", new { index = 2 }));
        Assert.Equal([first, second, third], last.EnumerateArray().Select(r => r.GetProperty("id").GetString()));

        var bad = await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync($"/api/rules/{first}/move", new { index = 3 }), System.Net.HttpStatusCode.BadRequest);
        Assert.Contains("0 (runs first) to 2", bad.GetProperty("errors").GetProperty("index")[0].GetString(), StringComparison.Ordinal);
        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync("/api/rules/nope/move", new { index = 0 }), System.Net.HttpStatusCode.NotFound);
    }
}
