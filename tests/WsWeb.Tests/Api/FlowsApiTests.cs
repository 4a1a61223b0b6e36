using System.Net;
using System.Text.Json;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

public sealed class FlowsApiTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Fact]
    public async Task Lists_websocket_flows_newest_first_with_counts()
    {
        var (client1, _, flow1) = await app.ConnectAsync();
        await using var c1 = client1;
        var (client2, _, flow2) = await app.ConnectAsync();
        await using var c2 = client2;
        await client2.SendTextAsync("hello");
        Assert.Equal("hello", await client2.ReceiveTextAsync());
        await Eventually.AssertAsync(() => flow2.WebSocket!.Messages.Count == 2, "both messages recorded");

        var page = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/flows?filter=~websocket&limit=1000"));
        var ids = page.GetProperty("flows").EnumerateArray().Select(f => f.GetProperty("id").GetString()).ToList();
        Assert.True(ids.IndexOf(flow2.Id) < ids.IndexOf(flow1.Id), "newest first");
        var summary = page.GetProperty("flows").EnumerateArray().Single(f => f.GetProperty("id").GetString() == flow2.Id);
        Assert.Equal("GET", summary.GetProperty("method").GetString());
        Assert.StartsWith("ws://127.0.0.1:", summary.GetProperty("url").GetString(), StringComparison.Ordinal);
        Assert.Equal(101, summary.GetProperty("status").GetInt32());
        Assert.True(summary.GetProperty("isWebSocket").GetBoolean());
        Assert.True(summary.GetProperty("isLive").GetBoolean());
        Assert.Equal(1, summary.GetProperty("messagesFromClient").GetInt64());
        Assert.Equal(1, summary.GetProperty("messagesFromServer").GetInt64());
        Assert.Equal(5, summary.GetProperty("bytesFromClient").GetInt64());

        var paged = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/flows?skip=1&limit=1"));
        Assert.Single(paged.GetProperty("flows").EnumerateArray());
        Assert.Equal(1, paged.GetProperty("skip").GetInt32());
    }

    [Fact]
    public async Task Bad_filter_is_a_400_naming_the_filter_with_the_position()
    {
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/flows?filter=" + Uri.EscapeDataString("~u a & ~zz")), "filter");
        Assert.Equal("unknown operator '~zz' at position 7", message);
    }

    [Theory]
    [InlineData("/api/flows?limit=0", "limit")]
    [InlineData("/api/flows?limit=1001", "limit")]
    [InlineData("/api/flows?skip=-1", "skip")]
    [InlineData("/api/flows?limit=ten", "limit")]
    public async Task Bad_paging_is_a_400_naming_the_field(string url, string field) =>
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(url), field);

    [Fact]
    public async Task Reads_one_flow_with_handshake_connections_and_close_info()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye");
            await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        }

        var detail = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}"));
        Assert.Equal(flow.Id, detail.GetProperty("summary").GetProperty("id").GetString());
        Assert.False(detail.GetProperty("summary").GetProperty("isLive").GetBoolean());
        var headers = detail.GetProperty("request").GetProperty("headers").EnumerateArray()
            .ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("value").GetString(), StringComparer.OrdinalIgnoreCase);
        Assert.Equal("websocket", headers["Upgrade"], ignoreCase: true);
        Assert.Equal(101, detail.GetProperty("response").GetProperty("statusCode").GetInt32());
        Assert.Contains("sec-websocket-accept", detail.GetProperty("response").GetProperty("headers").EnumerateArray()
            .Select(h => h.GetProperty("name").GetString()!.ToLowerInvariant()));
        Assert.False(detail.GetProperty("clientConn").GetProperty("tlsEstablished").GetBoolean());
        Assert.Equal($"127.0.0.1:{app.Echo.Port}", detail.GetProperty("serverConn").GetProperty("address").GetString());
        var ws = detail.GetProperty("webSocket");
        Assert.Equal(1000, ws.GetProperty("closeCode").GetInt32());
        Assert.Equal("bye", ws.GetProperty("closeReason").GetString());
        Assert.True(ws.GetProperty("closedByClient").GetBoolean());
        Assert.Equal(0, ws.GetProperty("clientPings").GetInt64());
        Assert.Equal((WebSocketCloseStatus.NormalClosure, "bye"), await server.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Unknown_flow_is_a_404_problem()
    {
        var problem = await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/nope"), HttpStatusCode.NotFound);
        Assert.Contains("nope", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/nope/messages"), HttpStatusCode.NotFound);
        await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/nope/messages/0/content"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Pages_messages_with_an_after_cursor_and_a_filter()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("one");
        await client.ReceiveTextAsync();
        await client.SendBinaryAsync([1, 2, 3]);
        await client.ReceiveAsync();
        await client.SendTextAsync("three");
        await client.ReceiveTextAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 6, "six messages recorded");

        var first = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?limit=4"));
        var messages = first.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal([0L, 1, 2, 3], messages.Select(m => m.GetProperty("index").GetInt64()));
        Assert.Equal(3, first.GetProperty("next").GetInt64());
        Assert.Equal("one", messages[0].GetProperty("content").GetString());
        Assert.Equal("utf8", messages[0].GetProperty("encoding").GetString());
        Assert.True(messages[0].GetProperty("fromClient").GetBoolean());
        Assert.False(messages[1].GetProperty("fromClient").GetBoolean());
        Assert.Equal("binary", messages[2].GetProperty("type").GetString());
        Assert.Equal("base64", messages[2].GetProperty("encoding").GetString());
        Assert.Equal("AQID", messages[2].GetProperty("content").GetString());
        Assert.Equal(3, messages[2].GetProperty("length").GetInt32());

        var rest = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after=3"));
        Assert.Equal([4L, 5], rest.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("index").GetInt64()));

        var fromServerText = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?filter=" + Uri.EscapeDataString("~ws & ~text")));
        Assert.Equal([1L, 5], fromServerText.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("index").GetInt64()));

        var empty = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after=5"));
        Assert.Empty(empty.GetProperty("messages").EnumerateArray());
        Assert.Equal(5, empty.GetProperty("next").GetInt64());

        // A filter that matches nothing still moves the cursor past what it looked at: the next poll starts there.
        var none = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after=1&filter=" + Uri.EscapeDataString("~b nothing-matches")));
        Assert.Empty(none.GetProperty("messages").EnumerateArray());
        Assert.Equal(5, none.GetProperty("next").GetInt64());
        var fromStart = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?filter=" + Uri.EscapeDataString("~b nothing-matches")));
        Assert.Equal(5, fromStart.GetProperty("next").GetInt64());

        Assert.Contains("position", await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?filter=~wq%20%26"), "filter"), StringComparison.Ordinal);
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after=-2"), "after");
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?limit=0"), "limit");
    }

    [Fact]
    public async Task Serves_raw_content_as_text_or_bytes()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("héllo");
        await client.ReceiveTextAsync();
        await client.SendBinaryAsync([0, 255, 7]);
        await client.ReceiveAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 4, "four messages recorded");

        var text = await app.Api.GetAsync($"/api/flows/{flow.Id}/messages/0/content");
        Assert.Equal(HttpStatusCode.OK, text.StatusCode);
        Assert.Equal("text/plain", text.Content.Headers.ContentType?.MediaType);
        Assert.Equal("héllo", Encoding.UTF8.GetString(await text.Content.ReadAsByteArrayAsync()));

        var binary = await app.Api.GetAsync($"/api/flows/{flow.Id}/messages/2/content");
        Assert.Equal("application/octet-stream", binary.Content.Headers.ContentType?.MediaType);
        Assert.Equal(new byte[] { 0, 255, 7 }, await binary.Content.ReadAsByteArrayAsync());

        await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages/99/content"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Api_routes_never_answer_on_the_proxy_listener()
    {
        using var direct = new HttpClient { BaseAddress = app.ProxyUri };
        var response = await direct.GetAsync("/api/flows");
        var body = await response.Content.ReadAsStringAsync();
        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("\"flows\"", body, StringComparison.Ordinal);

        // Through the proxy to the web listener is refused as well: the proxy does not forward to itself.
        using var viaProxy = new HttpClient(new HttpClientHandler { Proxy = new WebProxy(app.ProxyUri), UseProxy = true });
        var proxied = await viaProxy.GetAsync(new Uri($"http://127.0.0.1:{app.WebPort}/api/flows"));
        Assert.NotEqual(HttpStatusCode.OK, proxied.StatusCode);
    }
    [Fact]
    public async Task After_the_largest_cursor_is_an_empty_page_in_the_api_and_the_dashboard()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("one");
        await client.ReceiveTextAsync();
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 2, "two messages recorded");

        // after + 1 used to wrap to long.MinValue and start the page over at index 0.
        foreach (var after in new[] { long.MaxValue, long.MaxValue - 1 })
        {
            var page = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={after}"));
            Assert.Empty(page.GetProperty("messages").EnumerateArray());
            Assert.Equal(after, page.GetProperty("next").GetInt64());
        }

        // The detail page's live catch-up reads through the same paging.
        var rows = await app.Api.GetAsync($"/ui/flows/{flow.Id}/messages?after={long.MaxValue}");
        Assert.Equal(HttpStatusCode.OK, rows.StatusCode);
        Assert.DoesNotContain("data-index", await rows.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), rows.Headers.GetValues("X-Cursor").Single());
        var all = await app.Api.GetAsync($"/ui/flows/{flow.Id}/messages?after=-1");
        Assert.Contains("data-index=\"1\"", await all.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/flows?filter=~q&filter=~s", "filter")]
    [InlineData("/api/flows/any/messages?filter=~wq&filter=~ws", "filter")]
    [InlineData("/api/flows/export?filter=~q&filter=~s", "filter")]
    [InlineData("/api/flows/export?format=json&format=har", "format")]
    // Numbers and booleans too: the check runs before binding, which would fail on "5,5" first.
    [InlineData("/api/flows?limit=5&limit=5", "limit")]
    [InlineData("/api/flows/any/messages?after=1&after=2", "after")]
    [InlineData("/api/flows/any/messages/0/content?original=true&original=false", "original")]
    public async Task A_query_parameter_given_twice_is_a_400_naming_it(string url, string field)
    {
        // Bound as one string, the values used to be joined with a comma: "~q,~s" → "unknown operator '~q,'".
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(url), field);
        Assert.Contains("given 2 times", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Messages_and_content_of_a_plain_http_flow_are_both_409()
    {
        var tag = Guid.NewGuid().ToString("N");
        using (var viaProxy = new HttpClient(new HttpClientHandler { Proxy = new WebProxy(app.ProxyUri), UseProxy = true }))
        {
            using var response = await viaProxy.GetAsync(new Uri($"http://127.0.0.1:{app.Echo.Port}/echo?plain={tag}"));
        }

        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = app.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal), take: 1).FirstOrDefault()) is not null, "the http flow is recorded");
        Assert.False(flow!.IsWebSocket);

        var list = await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages"), HttpStatusCode.Conflict);
        var content = await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages/0/content"), HttpStatusCode.Conflict);
        Assert.Contains("not a WebSocket flow", list.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(list.GetProperty("detail").GetString(), content.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("/api/flows/any/messages/abc/content")]
    [InlineData("/api/flows/any/messages/99999999999999999999/content")]
    public async Task A_message_index_that_is_not_a_number_is_a_400_naming_it(string url)
    {
        // The route used to constrain it, and a constraint that fails is the framework's bare 404.
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(url), "index");
        Assert.EndsWith($"is not an integer from {long.MinValue} to {long.MaxValue}.", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/flows?limit=ten", "limit", "'ten' is not an integer from -2147483648 to 2147483647.")]
    [InlineData("/api/flows?skip=1.5", "skip", "'1.5' is not an integer from -2147483648 to 2147483647.")]
    [InlineData("/api/flows/any/messages?after=x", "after", "'x' is not an integer from -9223372036854775808 to 9223372036854775807.")]
    [InlineData("/api/flows/any/messages/0/content?original=maybe", "original", "'maybe' is not true or false.")]
    [InlineData("/api/intercept/held?preview=perhaps", "preview", "'perhaps' is not true or false.")]
    [InlineData("/ui/flows/any/messages?before=yesterday", "before", "'yesterday' is not an integer from -9223372036854775808 to 9223372036854775807.")]
    public async Task A_query_value_of_the_wrong_kind_is_a_400_naming_it_in_the_APIs_words(string url, string field, string expected)
    {
        // The framework's "Failed to bind parameter "int? limit" from "ten"." names the handler's C# type.
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync(url), field);
        Assert.Equal(expected, message);
    }

    [Fact]
    public async Task A_wait_that_is_not_a_number_is_a_400_naming_it()
    {
        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.PostJsonAsync("/api/flows/any/messages?wait=soon", new { toClient = true, content = "x" }), "wait");
        Assert.Equal("'soon' is not a number.", message);
    }

    [Fact]
    public async Task A_long_bad_query_value_is_quoted_shortened()
    {
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows?limit={new string('9', 500)}"), "limit");
        Assert.Equal($"'{new string('9', 64)}…' is not an integer from -2147483648 to 2147483647.", message);
    }

    [Theory]
    [InlineData("POST", "/api/flows/any/messages", "")]
    [InlineData("POST", "/api/flows/any/messages", "null")]
    [InlineData("PUT", "/api/intercept", "")]
    [InlineData("POST", "/api/rules", "null")]
    [InlineData("PUT", "/api/rules/any", "")]
    public async Task A_missing_json_body_is_a_400_naming_the_body(string method, string url, string body)
    {
        // The framework's own message names the handler's C# parameter ("request"), which is no field of the API.
        using var request = new HttpRequestMessage(new HttpMethod(method), url) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        var message = await ApiAssert.InvalidFieldAsync(await app.Api.SendAsync(request), "body");
        Assert.Equal("A JSON object is required as the request body.", message);
    }
}
