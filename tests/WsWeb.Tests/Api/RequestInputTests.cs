using System.Net;
using System.Text;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>Malformed If-Match lists, and the dashboard's message fragment with a filter that does not parse.</summary>
public sealed class RequestInputTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Theory]
    [InlineData("*, *")]
    [InlineData("\"1\", *")]
    [InlineData("*, \"1\"")]
    public async Task A_star_in_an_if_match_list_is_a_400_naming_if_match(string ifMatch)
    {
        await app.ResetAsync();
        var rule = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~q", action = "drop" }), HttpStatusCode.Created);
        var id = rule.GetProperty("id").GetString();

        foreach (var (method, url, body) in new[] { ("PUT", "/api/intercept", """{"filter": "~q"}"""), ("PUT", $"/api/rules/{id}", """{"filter": "~s", "action": "drop"}"""), ("PATCH", $"/api/rules/{id}", """{"enabled": false}"""), ("DELETE", $"/api/rules/{id}", null) })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url, UriKind.Relative));
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            var message = await ApiAssert.InvalidFieldAsync(await app.Api.SendAsync(request), "If-Match");
            Assert.Contains("* alone", message, StringComparison.Ordinal);
        }

        // Nothing was changed.
        var unchanged = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"));
        Assert.Equal("~q", unchanged.GetProperty("filter").GetString());
        Assert.Equal(1, unchanged.GetProperty("version").GetInt64());
        Assert.False((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("enabled").GetBoolean());

        // Alone, * matches whatever is there.
        using var star = new HttpRequestMessage(HttpMethod.Put, new Uri("/api/intercept", UriKind.Relative)) { Content = new StringContent("""{"filter": "~q"}""", Encoding.UTF8, "application/json") };
        star.Headers.TryAddWithoutValidation("If-Match", " * ");
        await ApiAssert.JsonAsync(await app.Api.SendAsync(star));
        await app.ResetAsync();
    }

    [Fact]
    public async Task The_message_fragment_answers_a_bad_filter_with_the_problem_the_api_gives()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;

        var fragment = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/ui/flows/{flow.Id}/messages?filter=~zz"), "filter");
        var api = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?filter=~zz"), "filter");
        Assert.Equal(api, fragment);
    }
}
