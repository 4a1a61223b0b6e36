using System.Net;
using System.Net.Http.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// Filters are bounded (4096 characters, 100 terms): a rule or intercept filter runs on every message of every
/// connection, and one API call with a huge one used to slow the whole proxy down.
/// </summary>
public sealed class FilterBoundsTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    // The review's repro: "~b zq0 | ~b zq1 | … ~b zq19999", 248,887 characters. Accepted, it made every relayed
    // message cost 20,000 regex scans (about 8 ms each in-process; 10 messages a second through the proxy).
    private static readonly string Huge = Terms(20_000);

    public Task InitializeAsync() => app.ResetAsync();

    public Task DisposeAsync() => app.ResetAsync();

    private static string Terms(int count) => string.Join(" | ", Enumerable.Range(0, count).Select(i => $"~b zq{i}"));

    [Fact]
    public async Task A_huge_intercept_or_rule_filter_is_a_400_naming_filter_and_saying_the_limit()
    {
        var tooLong = await ApiAssert.InvalidFieldAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = Huge }), "filter");
        Assert.Equal($"expression too long at position 4096 ({Huge.Length} characters, at most 4096)", tooLong);
        Assert.False((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("enabled").GetBoolean());

        Assert.Equal(tooLong, await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = Huge, action = "drop" }), "filter"));
        Assert.Equal(0, (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).GetArrayLength());

        // Short enough, but more terms than the bound: the error points at the first term past it.
        var tooMany = Terms(101);
        var position = tooMany.IndexOf("~b zq100", StringComparison.Ordinal);
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = tooMany }), "filter");
        Assert.StartsWith($"too many terms at position {position} (more than 100 operators and values)", message, StringComparison.Ordinal);
        Assert.Equal(message, await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = tooMany, action = "drop" }), "filter"));

        // At the bound both are accepted, and a rule cannot be replaced with one past it.
        await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = Terms(100) }));
        var rule = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = Terms(100), action = "drop" }), HttpStatusCode.Created);
        var id = rule.GetProperty("id").GetString();
        Assert.Equal(message, await ApiAssert.InvalidFieldAsync(await app.Api.PutAsJsonAsync(new Uri($"/api/rules/{id}", UriKind.Relative), new { filter = tooMany, action = "drop" }), "filter"));
        Assert.Equal(Terms(100), (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"))).GetProperty("filter").GetString());
    }

    [Theory]
    [InlineData("/api/flows?filter={filter}")]
    [InlineData("/api/flows/{id}/messages?filter={filter}")]
    [InlineData("/api/flows/export?format=json&filter={filter}")]
    public async Task A_query_filter_past_the_bounds_is_a_400_naming_filter(string template)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        string Url(string filter) => template.Replace("{id}", flow.Id, StringComparison.Ordinal).Replace("{filter}", Uri.EscapeDataString(filter), StringComparison.Ordinal);

        // A query string cannot carry the 250 KB repro (Kestrel's request line limit is 8 KiB), but it can carry these.
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(Url(Terms(101))), "filter");
        Assert.StartsWith("too many terms at position ", message, StringComparison.Ordinal);
        var tooLong = "~u " + new string('a', 5000);
        Assert.Equal("expression too long at position 4096 (5003 characters, at most 4096)", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(Url(tooLong)), "filter"));
        Assert.Equal(HttpStatusCode.OK, (await app.Api.GetAsync(Url(Terms(100)))).StatusCode);
    }
}
