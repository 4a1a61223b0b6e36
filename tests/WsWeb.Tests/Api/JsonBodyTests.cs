using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// JSON request bodies are read strictly, and what is wrong with one is said in the API's terms: the field, and where
/// in the body, never the handler's C# parameter or a .NET type name.
/// </summary>
public sealed class JsonBodyTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, string json)
    {
        var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        return app.Api.SendAsync(request);
    }

    private static void AssertNoFrameworkWords(string message)
    {
        foreach (var word in new[] { "WsWeb.", "System.", "parameter", "Request request", "Path: $" })
        {
            Assert.DoesNotContain(word, message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("{", "The body is not valid JSON at line 1, byte 2: ")]
    [InlineData("{} x", "The body is not valid JSON at line 1, byte 4: 'x' is invalid after a single JSON value.")]
    [InlineData("[]", "The body must be a JSON object at line 1, byte 2.")]
    [InlineData("\"drop\"", "The body must be a JSON object at line 1, byte 7.")]
    public async Task A_body_that_is_not_a_json_object_is_a_400_naming_body_with_its_position(string body, string expected)
    {
        foreach (var (method, url) in new[] { (HttpMethod.Post, "/api/rules"), (HttpMethod.Put, "/api/intercept"), (HttpMethod.Post, "/api/flows/none/messages"), (HttpMethod.Post, "/api/flows/none/close") })
        {
            var message = await ApiAssert.InvalidFieldAsync(await SendAsync(method, url, body), "body");
            Assert.StartsWith(expected, message, StringComparison.Ordinal);
            AssertNoFrameworkWords(message);
        }
    }

    [Fact]
    public async Task Text_that_is_not_unicode_is_said_to_be_so_not_to_be_of_the_wrong_type()
    {
        // A lone surrogate escaped, and a byte that is not UTF-8: both are strings, neither is text.
        var surrogate = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, "/api/rules", "{\"filter\": \"~q\", \"action\": \"drop\", \"name\": \"\\ud800\"}"), "name");
        Assert.StartsWith("The value of name is not valid text at line 1, ", surrogate, StringComparison.Ordinal);
        Assert.Contains("lone surrogate", surrogate, StringComparison.Ordinal);

        using var content = new ByteArrayContent([.. Encoding.ASCII.GetBytes("{\"filter\": \"~q\", \"action\": \"drop\", \"name\": \""), 0xFF, 0xFE, (byte)'"', (byte)'}']);
        content.Headers.ContentType = new("application/json");
        var bytes = await ApiAssert.InvalidFieldAsync(await app.Api.PostAsync(new Uri("/api/rules", UriKind.Relative), content), "name");
        Assert.StartsWith("The value of name is not valid text at line 1, ", bytes, StringComparison.Ordinal);
        AssertNoFrameworkWords(bytes);
    }

    [Fact]
    public async Task A_syntax_error_inside_a_field_names_the_field_and_its_line()
    {
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, "/api/rules", "{\n  \"filter\": \"~q\",\n  \"enabled\": tru\n}"), "enabled");

        Assert.StartsWith("The value of enabled is not valid JSON at line 3, ", message, StringComparison.Ordinal);
        Assert.Contains("'tru", message, StringComparison.Ordinal);
        AssertNoFrameworkWords(message);
    }

    [Theory]
    [InlineData("/api/flows/none/messages", """{"toClient": "yes"}""", "toClient", "The value of toClient must be true or false at line 1, byte 19.")]
    [InlineData("/api/flows/none/close", """{"code": 99999999999}""", "code", "The value of code must be a whole number from -2147483648 to 2147483647")]
    [InlineData("/api/rules", """{"filter": "~q", "replace": []}""", "replace", "The value of replace must be a JSON object")]
    [InlineData("/api/rules", """{"filter": 5}""", "filter", "The value of filter must be a string")]
    public async Task A_value_of_the_wrong_type_says_what_the_field_takes(string url, string body, string field, string expected)
    {
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, url, body), field);

        Assert.StartsWith(expected, message, StringComparison.Ordinal);
        AssertNoFrameworkWords(message);
    }

    [Fact]
    public async Task A_number_in_quotes_is_a_400_naming_the_field_as_a_boolean_in_quotes_is()
    {
        await app.ResetAsync();

        // The review's repro: "1000" closed the flow with 1000.
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            var code = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, $"/api/flows/{flow.Id}/close", """{"target": "both", "code": "1000"}"""), "code");
            Assert.Equal("The value of code must be a whole number from -2147483648 to 2147483647 at line 1, byte 34.", code);
            Assert.True(flow.IsLive);
            await client.SendTextAsync("still open");
            Assert.Equal("still open", await client.ReceiveTextAsync());
        }

        var delay = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, "/api/rules", """{"filter": "~q", "action": "delay", "delayMs": "500"}"""), "delayMs");
        Assert.Equal("The value of delayMs must be a whole number from -2147483648 to 2147483647 at line 1, byte 53.", delay);
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/rules"))).EnumerateArray());

        var timeout = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Put, "/api/intercept", """{"filter": "~q", "timeoutSeconds": "5"}"""), "timeoutSeconds");
        Assert.Equal("The value of timeoutSeconds must be a number at line 1, byte 39.", timeout);
        Assert.False((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("enabled").GetBoolean());

        // Numbers as numbers still do.
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(HttpMethod.Post, "/api/rules", """{"filter": "~q", "action": "delay", "delayMs": 500}""")).StatusCode);
        await app.ResetAsync();
    }

    [Fact]
    public async Task The_openapi_document_says_numbers_are_numbers_and_nothing_else()
    {
        var schemas = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/openapi/v1.json"))).GetProperty("components").GetProperty("schemas");

        foreach (var (schema, field) in new[] { ("CloseRequest", "code"), ("RuleRequest", "delayMs"), ("InterceptRequest", "timeoutSeconds"), ("RuleView", "hits") })
        {
            var property = schemas.GetProperty(schema).GetProperty("properties").GetProperty(field);
            var types = property.GetProperty("type");
            var names = types.ValueKind == JsonValueKind.Array ? types.EnumerateArray().Select(t => t.GetString()).ToList() : [types.GetString()];
            Assert.DoesNotContain("string", names);
            Assert.False(property.TryGetProperty("pattern", out _), $"{schema}.{field} has a pattern for numbers written as strings");
        }
    }

    [Fact]
    public async Task A_misspelt_field_is_refused_and_no_rule_is_made()
    {
        await app.ResetAsync();
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, "/api/rules", """{"filter": "~q", "action": "drop", "enable": false}"""), "enable");

        Assert.Equal("unknown field 'enable' at line 1, byte 45; the fields here are name, filter, action, replace, delayMs, enabled.", message);
        Assert.Empty(await app.Api.GetFromJsonAsync<List<JsonElement>>(new Uri("/api/rules", UriKind.Relative)) ?? []);

        // Every field the dashboard's forms send (formJson: each named control, the hidden ones left out) is one.
        var rule = await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Post, "/api/rules",
            """{"name": "n", "filter": "~q", "action": "replace", "enabled": false, "replace": {"pattern": "a", "replacement": "b", "binary": false}}"""), HttpStatusCode.Created);
        var id = rule.GetProperty("id").GetString();
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", """{"filter": "~q", "action": "delay", "enabled": false, "delayMs": 5}"""));
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Patch, $"/api/rules/{id}", """{"enabled": false}"""));
        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, "/api/intercept", """{"filter": "~q", "timeoutSeconds": 30, "timeoutAction": "drop"}"""));
        await app.ResetAsync();
    }

    [Fact]
    public async Task What_a_get_answers_can_be_changed_and_sent_back()
    {
        // Read, change, write: the answer's read-only fields (id, hits, version…) are accepted and ignored.
        await app.ResetAsync();
        var created = await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Post, "/api/rules", """{"filter": "~q", "action": "drop"}"""), HttpStatusCode.Created);
        var id = created.GetProperty("id").GetString();
        var read = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/rules/{id}"))).GetRawText();
        var rule = await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, $"/api/rules/{id}", read.Replace("\"enabled\":true", "\"enabled\":false", StringComparison.Ordinal)));
        Assert.False(rule.GetProperty("enabled").GetBoolean());
        Assert.Equal(2, rule.GetProperty("version").GetInt64());
        Assert.Equal(id, rule.GetProperty("id").GetString());

        await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, "/api/intercept", """{"filter": "~q"}"""));
        var settings = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetRawText();
        var intercept = await ApiAssert.JsonAsync(await SendAsync(HttpMethod.Put, "/api/intercept", settings.Replace("\"timeoutSeconds\":null", "\"timeoutSeconds\":30", StringComparison.Ordinal)));
        Assert.Equal(30, intercept.GetProperty("timeoutSeconds").GetDouble());
        Assert.True(intercept.GetProperty("enabled").GetBoolean());

        // A PUT turns intercept on: "enabled": false in one would say the opposite of what it does.
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Put, "/api/intercept", """{"filter": "~q", "enabled": false}"""), "enabled");
        Assert.Contains("DELETE /api/intercept", message, StringComparison.Ordinal);
        await app.ResetAsync();
    }

    [Theory]
    [InlineData("PUT", "/api/intercept", """{"filter": "~q", "timeout": 60}""", "timeout")]
    [InlineData("POST", "/api/flows/none/messages", """{"toClient": true, "content": "aGk=", "encodng": "base64"}""", "encodng")]
    [InlineData("POST", "/api/rules", """{"filter": "~q", "action": "replace", "replace": {"pattern": "a", "replacment": "b"}}""", "replace.replacment")]
    [InlineData("PATCH", "/api/rules/none", """{"enabled": true, "name": "x"}""", "name")]
    [InlineData("POST", "/api/flows/none/close", """{"target": "both", "cod": 4000}""", "cod")]
    [InlineData("POST", "/api/intercept/held/none/0/release", """{"content": "x", "encoding": "utf8", "edited": true}""", "edited")]
    public async Task An_unknown_field_is_a_400_naming_it(string method, string url, string body, string field)
    {
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(new HttpMethod(method), url, body), field);

        Assert.StartsWith($"unknown field '{field.Split('.')[^1]}' at line 1, byte ", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"toClient": true, "content": "a", "toClient": false}""", "toClient")]
    [InlineData("""{"toClient": true, "content": "a", "ToClient": false}""", "ToClient")]
    public async Task A_field_sent_twice_is_a_400_naming_it(string body, string field)
    {
        var message = await ApiAssert.InvalidFieldAsync(await SendAsync(HttpMethod.Post, "/api/flows/none/messages", body), field);

        Assert.StartsWith($"'{field}' appears twice in the same object", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_field_sent_twice_in_a_nested_object_names_its_path()
    {
        var message = await ApiAssert.InvalidFieldAsync(
            await SendAsync(HttpMethod.Post, "/api/rules", """{"filter": "~q", "action": "replace", "replace": {"pattern": "a", "pattern": "b", "replacement": ""}}"""),
            "replace.pattern");

        Assert.StartsWith("'pattern' appears twice", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_openapi_document_closes_request_bodies_and_leaves_answers_open()
    {
        var schemas = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/openapi/v1.json"))).GetProperty("components").GetProperty("schemas");

        foreach (var request in new[] { "RuleRequest", "ReplaceSpec", "RulePatch", "InjectRequest", "CloseRequest", "InterceptRequest", "ReleaseRequest" })
        {
            Assert.False(schemas.GetProperty(request).GetProperty("additionalProperties").GetBoolean(), $"{request} should refuse unknown fields");
        }

        // Problem details carry extensions (errors, currentVersion, current); answers may gain fields.
        foreach (var answer in new[] { "ProblemDetails", "HttpValidationProblemDetails", "FlowSummary", "RuleView", "InterceptState" })
        {
            Assert.False(schemas.GetProperty(answer).TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False, $"{answer} should not be closed");
        }
    }
}
