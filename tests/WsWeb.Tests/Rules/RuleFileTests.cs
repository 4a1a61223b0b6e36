using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using WsWeb.Rules;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Rules;

/// <summary>
/// Rules outlive the process: each change is saved to rules.json in the data directory, and the next host on that
/// directory runs them. Real hosts, one after the other, on one data directory.
/// </summary>
public sealed class RuleFileTests : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-rules-" + Guid.NewGuid().ToString("N"));
    private readonly WsWebApps _apps = new();

    private string RulesPath => Path.Combine(_dataDirectory, RuleFile.FileName);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _apps.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    /// <summary>A started host on the test's data directory; stopped at the end of the test unless stopped before.</summary>
    private Task<WsWebApp> StartAsync() => _apps.StartAsync(options => options with { DataDirectory = _dataDirectory });

    [Fact]
    public async Task Rules_made_over_the_api_run_again_after_a_restart()
    {
        var first = await StartAsync();
        var replaceId = await CreateAsync(first, new { name = "rename", filter = "~wq & ~text", action = "replace", replace = new { pattern = "alice", replacement = "bob" } });
        var dropId = await CreateAsync(first, new { filter = "~b secret", action = "drop", enabled = false });
        using var moved = await first.Api.PatchAsJsonAsync(new Uri($"/api/rules/{dropId}", UriKind.Relative), new { enabled = true });
        Assert.Equal(HttpStatusCode.OK, moved.StatusCode);

        // Saved on its own, while the host runs: owner-only, since filters and patterns may name what is secret.
        await Eventually.AssertAsync(() => File.Exists(RulesPath) && File.ReadAllText(RulesPath).Contains("\"enabled\": true", StringComparison.Ordinal)
            && !File.ReadAllText(RulesPath).Contains("\"enabled\": false", StringComparison.Ordinal), "the enabled drop rule is saved");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(RulesPath));
        }

        // Stopped as Ctrl+C stops it (WsWebApp.DisposeAsync may run again: it is idempotent).
        await first.DisposeAsync();
        var second = await StartAsync();
        var rules = (await second.Api.GetFromJsonAsync<List<JsonElement>>(new Uri("/api/rules", UriKind.Relative)))!;
        Assert.Equal([replaceId, dropId], rules.Select(r => r.GetProperty("id").GetString()));
        Assert.Equal("rename", rules[0].GetProperty("name").GetString());
        Assert.Equal("bob", rules[0].GetProperty("replace").GetProperty("replacement").GetString());
        Assert.True(rules[1].GetProperty("enabled").GetBoolean());

        // Each rule keeps the version it was saved at (the PATCH made it 2): an If-Match read before the restart still
        // means what it meant, and one older than that is still stale.
        Assert.Equal(2, rules[1].GetProperty("version").GetInt64());
        var stale = new HttpRequestMessage(HttpMethod.Put, new Uri($"/api/rules/{dropId}", UriKind.Relative)) { Content = JsonContent.Create(new { filter = "~b other", action = "drop" }) };
        stale.Headers.TryAddWithoutValidation("If-Match", "\"1\"");
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await second.Api.SendAsync(stale)).StatusCode);

        var (client, server, _) = await second.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("a secret");
            await client.SendTextAsync("alice here");
            Assert.Equal("bob here", await client.ReceiveTextAsync());
            await Eventually.AssertAsync(() => server.Received.Count == 1, "the server got the replaced message");
            Assert.Equal("bob here", System.Text.Encoding.UTF8.GetString(Assert.Single(server.Received).Data));
        }

        // A deletion is saved too.
        using var deleted = await second.Api.DeleteAsync(new Uri($"/api/rules/{dropId}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await Eventually.AssertAsync(() => !File.ReadAllText(RulesPath).Contains(dropId, StringComparison.Ordinal), "the deletion is saved");
    }

    [Fact]
    public async Task An_intercept_etag_read_before_a_restart_does_not_match_a_change_made_after_it()
    {
        var first = await StartAsync();
        using (var set = await first.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq" }))
        {
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        }

        var before = (await first.Api.GetAsync("/api/intercept")).Headers.ETag!.ToString();
        await first.DisposeAsync();

        // The settings start afresh (off), and a teammate sets a filter: the tag the stale page holds must not match it.
        var second = await StartAsync();
        using (var teammate = await second.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~ws & ~b teammate" }))
        {
            Assert.Equal(HttpStatusCode.OK, teammate.StatusCode);
        }

        var stale = new HttpRequestMessage(HttpMethod.Put, new Uri("/api/intercept", UriKind.Relative)) { Content = JsonContent.Create(new { filter = "~wq" }) };
        stale.Headers.TryAddWithoutValidation("If-Match", before);
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await second.Api.SendAsync(stale)).StatusCode);
        Assert.Equal("~ws & ~b teammate", (await ApiAssert.JsonAsync(await second.Api.GetAsync("/api/intercept"))).GetProperty("filter").GetString());
    }

    [Fact]
    public async Task A_file_with_a_bad_rule_loads_the_rest_and_keeps_the_file_as_it_was_aside()
    {
        MakeDataDirectory();
        var written = """
            [
              {"id": "good1", "name": "keep me", "filter": "~wq", "action": "delay", "delayMs": 5},
              {"id": "bad1", "name": "typo", "filter": "~wq & ~zz", "action": "drop"},
              {"id": "bad2", "filter": "~ws", "action": "explode"}
            ]
            """;
        await File.WriteAllTextAsync(RulesPath, written);

        var app = await StartAsync();

        var rules = await app.Api.GetFromJsonAsync<List<JsonElement>>(new Uri("/api/rules", UriKind.Relative));
        Assert.Equal(["good1"], rules!.Select(r => r.GetProperty("id").GetString()));
        var aside = Assert.Single(Directory.GetFiles(_dataDirectory, RuleFile.FileName + ".rejected-*"));
        Assert.Equal(written, await File.ReadAllTextAsync(aside));

        // rules.json now says what runs, so the next start has nothing to set aside; the rules page says why.
        await Eventually.AssertAsync(() => !File.ReadAllText(RulesPath).Contains("bad1", StringComparison.Ordinal), "rules.json is rewritten");
        Assert.Null(app.Services.GetRequiredService<RuleFile>().Problem);
    }

    [Fact]
    public async Task Each_rule_is_read_as_strictly_as_the_api_reads_one_and_the_others_still_load()
    {
        MakeDataDirectory();
        var written = "\uFEFF" + """
            [
              {"id": "ok-1", "filter": "~wq", "action": "delay", "delayMs": 5},
              {"id": "typo", "filter": "~wq", "action": "drop", "enabeld": false},
              {"id": "quoted", "filter": "~ws", "action": "delay", "delayMs": "500"},
              {"id": "bad/id", "name": "renamed", "filter": "~ws", "action": "drop", "enabled": "false"},
              {"id": "a/b", "name": "kept under a new id", "filter": "~ws", "action": "drop", "enabled": false}
            ]
            """;
        await File.WriteAllTextAsync(RulesPath, written);

        var app = await StartAsync();

        // The BOM is no reason to lose the file; a misspelt field or a quoted number leaves out only its rule.
        var rules = (await app.Api.GetFromJsonAsync<List<JsonElement>>(new Uri("/api/rules", UriKind.Relative)))!;
        Assert.Equal(2, rules.Count);
        Assert.Equal("ok-1", rules[0].GetProperty("id").GetString());
        var renamed = rules[1].GetProperty("id").GetString()!;
        Assert.NotEqual("a/b", renamed);
        Assert.Matches("^[0-9a-f]{12}$", renamed);
        Assert.False(rules[1].GetProperty("enabled").GetBoolean());

        // The new id is written back, so it is the same after the next start; the file as it was is kept aside.
        await Eventually.AssertAsync(() => File.ReadAllText(RulesPath).Contains(renamed, StringComparison.Ordinal), "the new id is saved");
        Assert.Single(Directory.GetFiles(_dataDirectory, RuleFile.FileName + ".rejected-*"));
    }

    [Fact]
    public async Task A_file_that_is_not_json_leaves_no_rules_and_is_kept_aside()
    {
        MakeDataDirectory();
        await File.WriteAllTextAsync(RulesPath, "{ not json");

        var app = await StartAsync();

        Assert.Empty((await app.Api.GetFromJsonAsync<List<JsonElement>>(new Uri("/api/rules", UriKind.Relative)))!);
        var aside = Assert.Single(Directory.GetFiles(_dataDirectory, RuleFile.FileName + ".rejected-*"));
        Assert.Equal("{ not json", await File.ReadAllTextAsync(aside));
        await Eventually.AssertAsync(() => File.ReadAllText(RulesPath).Trim() == "[]", "rules.json is rewritten");
    }

    /// <summary>The data directory as WsWeb makes it (owner-only), so a file can be put in it before the first start.</summary>
    private void MakeDataDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(_dataDirectory);
        }
        else
        {
            Directory.CreateDirectory(_dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static async Task<string> CreateAsync(WsWebApp app, object rule)
    {
        using var response = await app.Api.PostAsJsonAsync(new Uri("/api/rules", UriKind.Relative), rule);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
    }
}
