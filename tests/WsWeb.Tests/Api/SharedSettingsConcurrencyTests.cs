using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// Rules and the intercept settings are shared by everyone on an instance (review: a stale page's PUT silently undid a
/// teammate's change). Versions, ETags and If-Match make a stale write a 412 instead; without If-Match scripts keep
/// last-write-wins.
/// </summary>
public sealed class SharedSettingsConcurrencyTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    private static readonly object Delay = new { name = "slow", filter = "~wq", action = "delay", delayMs = 5 };

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, object? body = null, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return app.Api.SendAsync(request);
    }

    /// <summary>A new rule (version 1, so its ETag is "1").</summary>
    private async Task<string> CreateRuleAsync() =>
        (await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", Delay), HttpStatusCode.Created)).GetProperty("id").GetString()!;

    [Fact]
    public async Task A_rule_write_with_a_stale_If_Match_is_a_412_naming_If_Match_and_changes_nothing()
    {
        var id = await CreateRuleAsync();
        var read = await app.Api.GetAsync($"/api/rules/{id}");
        var etag = read.Headers.ETag?.ToString();
        Assert.Equal("\"1\"", etag);
        Assert.Equal(1, (await ApiAssert.JsonAsync(read)).GetProperty("version").GetInt64());

        // A's save, made against what A read: accepted, at the next version.
        var saved = await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { name = "slow", filter = "~wq & ~b important", action = "delay", delayMs = 5 }, etag);
        var rule = await ApiAssert.JsonAsync(saved);
        Assert.Equal(2, rule.GetProperty("version").GetInt64());
        Assert.Equal("\"2\"", saved.Headers.ETag?.ToString());

        // B's save, made against the version before A's: refused, and A's filter stays.
        var stale = await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { name = "slow", filter = "~wq", action = "delay", delayMs = 5, enabled = false }, etag);
        var problem = await ApiAssert.ProblemAsync(stale, HttpStatusCode.PreconditionFailed);
        Assert.True(problem.GetProperty("errors").TryGetProperty("If-Match", out _), problem.ToString());
        Assert.Equal(2, problem.GetProperty("currentVersion").GetInt64());
        Assert.Equal("~wq & ~b important", problem.GetProperty("current").GetProperty("filter").GetString());
        Assert.StartsWith($"Rule '{id}' was changed by someone else since you read it", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("\"2\"", stale.Headers.ETag?.ToString());
        var now = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"));
        Assert.Equal("~wq & ~b important", now.GetProperty("filter").GetString());
        Assert.True(now.GetProperty("enabled").GetBoolean());

        // A stale delete is refused the same way; the current version deletes.
        await ApiAssert.ProblemAsync(await SendAsync(HttpMethod.Delete, $"/api/rules/{id}", ifMatch: etag), HttpStatusCode.PreconditionFailed);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(HttpMethod.Delete, $"/api/rules/{id}", ifMatch: "\"2\"")).StatusCode);
    }

    [Fact]
    public async Task Without_If_Match_the_last_write_wins_as_before_and_a_bad_If_Match_is_a_400()
    {
        var id = await CreateRuleAsync();
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { filter = "~ws", action = "drop" }));
        var second = await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { filter = "~wq", action = "drop" }));
        Assert.Equal(3, second.GetProperty("version").GetInt64());

        // "*" means "whatever it is now"; an unquoted version is not an entity tag, and is refused rather than ignored.
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { filter = "~wq", action = "drop" }, "*"));
        Assert.Contains("quotes", await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { filter = "~wq", action = "drop" }, "4"), "If-Match"), StringComparison.Ordinal);

        // A weak tag never matches (RFC 9110's strong comparison).
        await ApiAssert.ProblemAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { filter = "~wq", action = "drop" }, "W/\"4\""), HttpStatusCode.PreconditionFailed);
    }

    [Fact]
    public async Task Concurrent_puts_with_the_same_If_Match_exactly_one_succeeds()
    {
        var id = await CreateRuleAsync();
        const int Writers = 16;
        var answers = await Task.WhenAll(Enumerable.Range(0, Writers).Select(i =>
            SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { name = $"writer {i}", filter = "~wq", action = "drop" }, "\"1\"")));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.OK);
        Assert.Equal(Writers - 1, answers.Count(a => a.StatusCode == HttpStatusCode.PreconditionFailed));
        var winner = await ApiAssert.JsonAsync(answers.Single(a => a.StatusCode == HttpStatusCode.OK));
        var now = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"));
        Assert.Equal(winner.GetProperty("name").GetString(), now.GetProperty("name").GetString());
        Assert.Equal(2, now.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Patch_switches_a_rule_off_without_undoing_a_change_made_after_it_was_read()
    {
        var id = await CreateRuleAsync();

        // Someone changes the filter; then a page that read the rule before switches it off.
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", new { name = "slow", filter = "~wq & ~b important", action = "delay", delayMs = 5 }));
        var patched = await SendAsync(HttpMethod.Patch, $"/api/rules/{id}", new { enabled = false });
        var rule = await ApiAssert.JsonAsync(patched);
        Assert.False(rule.GetProperty("enabled").GetBoolean());
        Assert.Equal("~wq & ~b important", rule.GetProperty("filter").GetString());
        Assert.Equal(3, rule.GetProperty("version").GetInt64());
        Assert.Equal(3, (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules")))[0].GetProperty("version").GetInt64());
        Assert.Equal("\"3\"", patched.Headers.ETag?.ToString());

        // Switching it to what it is changes nothing; If-Match holds for PATCH too; enabled is required.
        Assert.Equal(3, (await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Patch, $"/api/rules/{id}", new { enabled = false }))).GetProperty("version").GetInt64());
        await ApiAssert.ProblemAsync(await SendAsync(HttpMethod.Patch, $"/api/rules/{id}", new { enabled = true }, "\"1\""), HttpStatusCode.PreconditionFailed);
        await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Patch, $"/api/rules/{id}", new { }), "enabled");
        await ApiAssert.ProblemAsync(await SendAsync(HttpMethod.Patch, "/api/rules/nope", new { enabled = true }), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Intercept_settings_have_a_version_and_a_stale_set_is_a_412_that_keeps_the_filter()
    {
        var read = await app.Api.GetAsync("/api/intercept");
        var state = await ApiAssert.JsonAsync(read);
        var etag = read.Headers.ETag?.ToString();
        Assert.Equal($"\"{state.GetProperty("version").GetInt64()}\"", etag);

        // A sets the filter against what it read; B, who read the same, changes only the timeout.
        var set = await SendAsync(HttpMethod.Put, "/api/intercept", new { filter = "~ws" }, etag);
        var afterA = await ApiAssert.JsonAsync(set);
        Assert.Equal(state.GetProperty("version").GetInt64() + 1, afterA.GetProperty("version").GetInt64());
        Assert.Equal($"\"{afterA.GetProperty("version").GetInt64()}\"", set.Headers.ETag?.ToString());
        var stale = await SendAsync(HttpMethod.Put, "/api/intercept", new { filter = "~wq & ~b secret", timeoutSeconds = 30 }, etag);
        var problem = await ApiAssert.ProblemAsync(stale, HttpStatusCode.PreconditionFailed);
        Assert.True(problem.GetProperty("errors").TryGetProperty("If-Match", out _), problem.ToString());
        Assert.Equal("~ws", problem.GetProperty("current").GetProperty("filter").GetString());
        Assert.StartsWith("The intercept settings were changed by someone else since you read it", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(afterA.GetProperty("version").GetInt64(), problem.GetProperty("currentVersion").GetInt64());
        await ApiAssert.ProblemAsync(await SendAsync(HttpMethod.Delete, "/api/intercept", ifMatch: etag), HttpStatusCode.PreconditionFailed);
        Assert.Equal("~ws", (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("filter").GetString());

        // Concurrent sets made against the same version: exactly one.
        var current = set.Headers.ETag!.ToString();
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => SendAsync(HttpMethod.Put, "/api/intercept", new { filter = $"~b w{i}" }, current)));
        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.OK);

        // Without If-Match, as before.
        Assert.False((await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Delete, "/api/intercept"))).GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task A_new_intercept_timeout_applies_to_messages_held_after_the_change()
    {
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, "/api/intercept", new { filter = "~wq & ~b hold" }));
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("hold one");
        var first = await HeldAsync(flow.Id, 1);
        Assert.Equal(JsonValueKind.Null, first[0].GetProperty("timeoutAt").ValueKind);

        // A timeout set now does not reach back: the message already held keeps waiting for a decision.
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, "/api/intercept", new { filter = "~wq & ~b hold", timeoutSeconds = 3600 }));
        var (other, _, otherFlow) = await app.ConnectAsync();
        await using var o = other;
        await other.SendTextAsync("hold two");
        var second = await HeldAsync(otherFlow.Id, 1);
        Assert.Equal(JsonValueKind.Number, second[0].GetProperty("timeoutAt").ValueKind);
        Assert.Equal(JsonValueKind.Null, (await HeldAsync(flow.Id, 1))[0].GetProperty("timeoutAt").ValueKind);
    }

    /// <summary>Polls the held list (a REST read, so no hub) until <paramref name="count"/> messages of the flow are held.</summary>
    private async Task<JsonElement[]> HeldAsync(string flowId, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var held = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray()
                .Where(h => h.GetProperty("flowId").GetString() == flowId).ToArray();
            if (held.Length >= count)
            {
                return held;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{count} messages of {flowId} were not held");
            await Task.Delay(20);
        }
    }
}
