using System.Net;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

public sealed class OpenApiTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Fact]
    public async Task Document_lists_every_endpoint_with_a_summary_and_description()
    {
        var document = await ApiAssert.JsonAsync(await app.Api.GetAsync("/openapi/v1.json"));
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = document.GetProperty("paths");
        (string Path, string Method)[] expected =
        [
            ("/api/flows", "get"),
            ("/api/flows/{id}", "get"),
            ("/api/flows/{id}/messages", "get"),
            ("/api/flows/{id}/messages", "post"),
            ("/api/flows/{id}/messages/{index}/content", "get"),
            ("/api/flows/{id}/close", "post"),
            ("/api/flows/{id}/kill", "post"),
            ("/api/intercept", "get"),
            ("/api/intercept", "put"),
            ("/api/intercept", "delete"),
            ("/api/intercept/held", "get"),
            ("/api/intercept/held/{flowId}/{index}/release", "post"),
            ("/api/intercept/held/{flowId}/{index}/drop", "post"),
            ("/api/rules", "get"),
            ("/api/rules", "post"),
            ("/api/rules/{id}", "get"),
            ("/api/rules/{id}", "put"),
            ("/api/rules/{id}", "patch"),
            ("/api/rules/{id}", "delete"),
        ];
        foreach (var (path, method) in expected)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} is missing");
            Assert.True(item.TryGetProperty(method, out var operation), $"{method} {path} is missing");
            Assert.False(string.IsNullOrWhiteSpace(operation.GetProperty("summary").GetString()), $"{method} {path} has no summary");
            Assert.Contains("Example", operation.GetProperty("description").GetString(), StringComparison.Ordinal);
        }

        var inject = paths.GetProperty("/api/flows/{id}/messages").GetProperty("post");
        var example = inject.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example");
        Assert.True(example.GetProperty("toClient").GetBoolean());
        Assert.True(inject.GetProperty("responses").TryGetProperty("201", out _));
        Assert.True(inject.GetProperty("responses").TryGetProperty("409", out _));

        // Writes to shared settings say how a stale If-Match is answered.
        foreach (var (path, method) in new[] { ("/api/rules/{id}", "put"), ("/api/rules/{id}", "patch"), ("/api/rules/{id}", "delete"), ("/api/intercept", "put"), ("/api/intercept", "delete") })
        {
            var operation = paths.GetProperty(path).GetProperty(method);
            Assert.True(operation.GetProperty("responses").TryGetProperty("412", out _), $"{method} {path} does not document 412");
        }

        Assert.Contains("If-Match", paths.GetProperty("/api/rules/{id}").GetProperty("put").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Swagger_ui_is_served_and_points_at_the_document()
    {
        var page = await app.Api.GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("swagger-ui", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var config = await app.Api.GetAsync("/swagger/index.js");
        Assert.Contains("/openapi/v1.json", await config.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
