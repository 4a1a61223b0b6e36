using System.Net;
using System.Net.Http.Json;
using WsWeb.Rules;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Rules;

/// <summary>
/// Rules are bounded in number and size: every rule runs on every relayed message, so a script that kept
/// creating them (each at the filter limit) slowed every WebSocket down, with no end.
/// </summary>
public sealed class RuleBoundsTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    [Fact]
    public async Task Concurrent_creates_stop_exactly_at_the_limit_with_a_409_naming_rules_and_the_limit()
    {
        // Fifty more than the limit, fifty at a time: the last batches race for the last places.
        const int Extra = 50;
        var statuses = new List<HttpStatusCode>();
        var problems = new List<HttpResponseMessage>();
        for (var start = 0; start < RuleStore.MaxRules + Extra; start += 50)
        {
            var batch = await Task.WhenAll(Enumerable.Range(start, 50).Select(i =>
                app.Api.PostJsonAsync("/api/rules", new { name = $"r{i}", filter = $"~b zq{i}", action = "drop" })));
            statuses.AddRange(batch.Select(r => r.StatusCode));
            problems.AddRange(batch.Where(r => r.StatusCode != HttpStatusCode.Created));
        }

        Assert.Equal(RuleStore.MaxRules, statuses.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(Extra, problems.Count);
        var problem = await ApiAssert.ProblemAsync(problems[0], HttpStatusCode.Conflict);
        Assert.Equal(RuleStore.MaxRules, problem.GetProperty("limit").GetInt32());
        var message = problem.GetProperty("errors").GetProperty("rules")[0].GetString();
        Assert.Contains($"at most {RuleStore.MaxRules} rules", message, StringComparison.Ordinal);
        var rules = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"));
        Assert.Equal(RuleStore.MaxRules, rules.GetArrayLength());

        // Full: a rule can still be changed in place, and deleting one makes room for one.
        var id = rules[0].GetProperty("id").GetString();
        await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri($"/api/rules/{id}", UriKind.Relative), new { filter = "~b other", action = "drop" }));
        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.DeleteAsync(new Uri($"/api/rules/{id}", UriKind.Relative))).StatusCode);
        await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~b last", action = "drop" }), HttpStatusCode.Created);
        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~b one too many", action = "drop" }), HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("name")]
    [InlineData("replace.pattern")]
    [InlineData("replace.replacement")]
    public async Task A_rule_field_past_its_length_limit_is_a_400_naming_the_field_and_the_limit(string field)
    {
        var (name, pattern, replacement, limit) = field switch
        {
            "name" => (new string('n', RuleCompiler.MaxNameLength + 1), "a", "b", RuleCompiler.MaxNameLength),
            "replace.pattern" => ("long pattern", new string('a', RuleCompiler.MaxPatternLength + 1), "b", RuleCompiler.MaxPatternLength),
            _ => ("long replacement", "a", new string('b', RuleCompiler.MaxReplacementLength + 1), RuleCompiler.MaxReplacementLength),
        };

        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.PostJsonAsync("/api/rules", new { name, filter = "~text", action = "replace", replace = new { pattern, replacement } }), field);
        Assert.Contains($"at most {limit} characters", message, StringComparison.Ordinal);
        Assert.Equal(0, (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).GetArrayLength());

        // At the limit it is accepted.
        var fits = field switch
        {
            "name" => new { name = name[..limit], pattern, replacement },
            "replace.pattern" => new { name, pattern = pattern[..limit], replacement },
            _ => new { name, pattern, replacement = replacement[..limit] },
        };
        await ApiAssert.JsonAsync(
            await app.Api.PostJsonAsync("/api/rules", new { fits.name, filter = "~text", action = "replace", replace = new { fits.pattern, fits.replacement } }),
            HttpStatusCode.Created);
    }
}
