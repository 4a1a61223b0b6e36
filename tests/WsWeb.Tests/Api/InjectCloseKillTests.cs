using System.Net;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

public sealed class InjectCloseKillTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Fact]
    public async Task Inject_to_the_client_arrives_at_the_client_only()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        var response = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = true, type = "text", content = "from the proxy", encoding = "utf8" });
        var message = await ApiAssert.JsonAsync(response, HttpStatusCode.Created);
        Assert.Equal("from the proxy", await client.ReceiveTextAsync());
        Assert.True(message.GetProperty("injected").GetBoolean());
        Assert.False(message.GetProperty("fromClient").GetBoolean());
        Assert.Equal("from the proxy", message.GetProperty("content").GetString());
        Assert.Equal($"/api/flows/{flow.Id}/messages/{message.GetProperty("index").GetInt64()}/content", response.Headers.Location?.OriginalString);
        Assert.Empty(server.Received);
    }

    [Fact]
    public async Task Inject_to_the_server_arrives_at_the_server_as_binary_from_hex()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        var message = await ApiAssert.JsonAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = false, type = "binary", content = "de ad be ef", encoding = "hex" }),
            HttpStatusCode.Created);
        Assert.True(message.GetProperty("fromClient").GetBoolean());
        Assert.Equal("binary", message.GetProperty("type").GetString());
        Assert.Equal(Convert.ToBase64String([0xde, 0xad, 0xbe, 0xef]), message.GetProperty("content").GetString());

        // The echo peer got it and echoed it back to the client.
        var (type, data) = await client.ReceiveAsync();
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, data);
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, Assert.Single(server.Received).Data);
    }

    [Fact]
    public async Task Inject_base64_text_to_the_server()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await ApiAssert.JsonAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = false, content = Convert.ToBase64String(Encoding.UTF8.GetBytes("snowman ☃")), encoding = "base64" }),
            HttpStatusCode.Created);
        Assert.Equal("snowman ☃", await client.ReceiveTextAsync());
        Assert.Equal("snowman ☃", Assert.Single(server.Texts));
    }

    [Theory]
    [InlineData("""{"type":"text","content":"x"}""", "toClient")]
    [InlineData("""{"toClient":true,"type":"frame","content":"x"}""", "type")]
    [InlineData("""{"toClient":true,"content":"x","encoding":"rot13"}""", "encoding")]
    [InlineData("""{"toClient":true,"content":"not base64!","encoding":"base64"}""", "content")]
    [InlineData("""{"toClient":true,"content":"abc","encoding":"hex"}""", "content")]
    [InlineData("""{"toClient":true,"type":"text","content":"ff fe","encoding":"hex"}""", "content")]
    [InlineData("""{"toClient":true,"type":"text","content":"\ud800"}""", "content")]
    [InlineData("""{"toClient":true}""", "content")]
    [InlineData("""{"toClient":"yes","content":"x"}""", "toClient")]
    [InlineData("""{"toClient":true,"content":""", "content")]
    public async Task Inject_with_bad_input_is_a_400_naming_the_field(string body, string field)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        var response = await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/messages", UriKind.Relative), content);
        await ApiAssert.InvalidFieldAsync(response, field);
        Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task Inject_over_the_maximum_message_size_is_a_400_naming_content()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        var tooBig = Convert.ToBase64String(new byte[(1024 * 1024) + 1]);
        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = true, type = "binary", content = tooBig, encoding = "base64" }),
            "content");
        Assert.Contains("maximum message size", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inject_into_an_unknown_flow_is_404_and_into_a_closed_one_409()
    {
        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync("/api/flows/unknown/messages", new { toClient = true, content = "x" }), HttpStatusCode.NotFound);

        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null);
            await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        }

        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = true, content = "x" }), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Delete_removes_a_finished_flow_and_refuses_a_live_one()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using (client)
        {
            // A delete never cuts a connection: the flow stays, and so does the WebSocket.
            var live = await ApiAssert.ProblemAsync(await app.Api.DeleteAsync(new Uri($"/api/flows/{flow.Id}", UriKind.Relative)), HttpStatusCode.Conflict);
            Assert.Equal($"Flow {flow.Id} is live; close or kill it first, then delete it.", live.GetProperty("detail").GetString());
            await client.SendTextAsync("still here");
            Assert.Equal("still here", await client.ReceiveTextAsync());

            await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null);
            await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        }

        using var deleted = await app.Api.DeleteAsync(new Uri($"/api/flows/{flow.Id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Null(app.Store.Get(flow.Id));
        await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}"), HttpStatusCode.NotFound);
        await ApiAssert.ProblemAsync(await app.Api.DeleteAsync(new Uri($"/api/flows/{flow.Id}", UriKind.Relative)), HttpStatusCode.NotFound);
        Assert.Single(server.Texts);
    }

    [Fact]
    public async Task Clear_removes_the_finished_flows_its_filter_matches_and_keeps_live_ones()
    {
        var (first, _, closedFirst) = await app.ConnectAsync();
        var (second, _, closedSecond) = await app.ConnectAsync();
        var (open, _, live) = await app.ConnectAsync();
        await using var o = open;
        foreach (var (client, flow) in new[] { (first, closedFirst), (second, closedSecond) })
        {
            await using (client)
            {
                await client.CloseAsync(WebSocketCloseStatus.NormalClosure, null);
                await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
            }
        }

        // The flows' paths carry their own tags, so the filters below reach only this test's flows.
        var tag = (HttpFlow f) => f.Request.Path[(f.Request.Path.IndexOf("c=", StringComparison.Ordinal) + 2)..];
        var cleared = await ApiAssert.JsonAsync(await app.Api.DeleteAsync(new Uri($"/api/flows?filter={Uri.EscapeDataString($"~u {tag(closedFirst)}")}", UriKind.Relative)));
        Assert.Equal((1, 0), (cleared.GetProperty("removed").GetInt32(), cleared.GetProperty("live").GetInt32()));
        Assert.Null(app.Store.Get(closedFirst.Id));
        Assert.NotNull(app.Store.Get(closedSecond.Id));

        var filter = Uri.EscapeDataString($"~u {tag(closedSecond)} | ~u {tag(live)}");
        cleared = await ApiAssert.JsonAsync(await app.Api.DeleteAsync(new Uri($"/api/flows?filter={filter}", UriKind.Relative)));
        Assert.Equal((1, 1), (cleared.GetProperty("removed").GetInt32(), cleared.GetProperty("live").GetInt32()));
        Assert.Null(app.Store.Get(closedSecond.Id));
        Assert.Same(live, app.Store.Get(live.Id));
        await open.SendTextAsync("untouched");
        Assert.Equal("untouched", await open.ReceiveTextAsync());

        // A filter that does not parse removes nothing and says where it is wrong.
        await ApiAssert.InvalidFieldAsync(await app.Api.DeleteAsync(new Uri("/api/flows?filter=~zz", UriKind.Relative)), "filter");
        Assert.Same(live, app.Store.Get(live.Id));
    }

    [Fact]
    public async Task Hundred_concurrent_injects_arrive_in_the_order_the_api_accepted_them()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        var injects = Enumerable.Range(0, 100).Select(async i =>
        {
            var response = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = false, content = $"m{i}" });
            var message = await ApiAssert.JsonAsync(response, HttpStatusCode.Created);
            return (Index: message.GetProperty("index").GetInt64(), Content: message.GetProperty("content").GetString()!);
        }).ToList();
        var accepted = await Task.WhenAll(injects);

        await Eventually.AssertAsync(() => server.Received.Count == 100, "100 messages at the server");
        var acceptedOrder = accepted.OrderBy(a => a.Index).Select(a => a.Content).ToList();
        Assert.Equal(100, acceptedOrder.Distinct().Count());
        Assert.Equal(acceptedOrder, server.Texts.ToList());
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(acceptedOrder[i], await client.ReceiveTextAsync());
        }
    }

    [Fact]
    public async Task Close_with_4000_maintenance_is_seen_by_both_peers()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        var response = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { target = "both", code = 4000, reason = "maintenance" });
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(((WebSocketCloseStatus)4000, "maintenance"), await client.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(((WebSocketCloseStatus)4000, "maintenance"), await server.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");

        var detail = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}"));
        Assert.Equal(4000, detail.GetProperty("webSocket").GetProperty("closeCode").GetInt32());
        Assert.Equal("maintenance", detail.GetProperty("webSocket").GetProperty("closeReason").GetString());
        Assert.True(detail.GetProperty("webSocket").GetProperty("closedByProxy").GetBoolean());

        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { code = 1000 }), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Close_toward_the_server_only_reaches_the_server_first()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        var response = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { target = "server", code = 1001, reason = "going away" });
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal((WebSocketCloseStatus.EndpointUnavailable, "going away"), await server.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10)));

        // The server's reply travels on to the client as a normal close.
        var (status, _) = await client.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status);

        // The proxy spoke for the client, so the close is the client's side's (docs/hub.md), made by the proxy.
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        var socket = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}"))).GetProperty("webSocket");
        Assert.True(socket.GetProperty("closedByClient").GetBoolean());
        Assert.True(socket.GetProperty("closedByProxy").GetBoolean());
    }

    [Theory]
    [InlineData("""{"code":999}""", "code")]
    [InlineData("""{"code":5000}""", "code")]
    [InlineData("""{"code":1004}""", "code")]
    [InlineData("""{"code":1005}""", "code")]
    [InlineData("""{"code":1006}""", "code")]
    [InlineData("""{"code":1015}""", "code")]
    [InlineData("""{"code":1016}""", "code")]
    [InlineData("""{"code":2999}""", "code")]
    [InlineData("""{"target":"proxy","code":1000}""", "target")]
    public async Task Close_with_bad_input_is_a_400_naming_the_field(string body, string field)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        await ApiAssert.InvalidFieldAsync(await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/close", UriKind.Relative), content), field);
        Assert.True(flow.IsLive);
    }

    [Fact]
    public async Task Close_reason_over_123_bytes_is_a_400_naming_reason()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;

        // 62 two-byte characters: 124 bytes of UTF-8 but only 62 chars.
        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { code = 1000, reason = new string('é', 62) }), "reason");
        Assert.Contains("124 bytes", message, StringComparison.Ordinal);
        var ok = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { code = 1000, reason = new string('x', 123) });
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
    }

    [Fact]
    public async Task Close_unknown_flow_is_404()
    {
        await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync("/api/flows/unknown/close", new { code = 1000 }), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Kill_aborts_both_connections_and_then_is_409()
    {
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        var response = await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);

        // No close frame: both peers see the connection drop.
        Assert.Null((await client.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10))).Status);
        Assert.Null((await server.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10))).Status);
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        var detail = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}"));
        Assert.Equal(1006, detail.GetProperty("webSocket").GetProperty("closeCode").GetInt32());
        Assert.Equal("Connection killed.", detail.GetProperty("error").GetString());

        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null), HttpStatusCode.Conflict);
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri("/api/flows/unknown/kill", UriKind.Relative), null), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Kill_aborts_a_plain_http_exchange_still_under_way()
    {
        // A server that takes the request and never answers: a long poll, as far as the client can tell.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        // A raw client: HttpClient would send the request again on a new connection once this one is cut.
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, app.ProxyPort);
        var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{port}/poll HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        using var accepted = await silent.AcceptTcpClientAsync();
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = app.Store.Snapshot().FirstOrDefault(f => f.Request.Port == port && f.IsLive)) is not null, "the exchange is live");

        var kill = await app.Api.PostAsync(new Uri($"/api/flows/{flow!.Id}/kill", UriKind.Relative), null);

        Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
        await Eventually.AssertAsync(() => !flow.IsLive, "the killed exchange ends");
        Assert.Equal("Connection killed.", flow.Error);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            Assert.Equal(0, await stream.ReadAsync(new byte[1], cts.Token));   // cut, with no answer
        }
        catch (IOException)
        {
            // A reset says the same.
        }

        var again = await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null), HttpStatusCode.Conflict);
        Assert.Equal($"Flow {flow.Id} has ended; it has no connection left to kill.", again.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Kill_ends_a_replay_that_waits_for_its_server()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        var original = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "127.0.0.1", Port = port, Path = "/", Headers = [new("Host", $"127.0.0.1:{port}")], Content = [] }, 0);
        app.Store.Add(original);

        var replaying = app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { });
        using var accepted = await silent.AcceptTcpClientAsync();
        HttpFlow? replay = null;
        await Eventually.AssertAsync(() => (replay = app.Store.Snapshot().FirstOrDefault(f => f.ReplayOf == original.Id)) is not null, "the replay is recorded");
        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostAsync(new Uri($"/api/flows/{replay!.Id}/kill", UriKind.Relative), null)).StatusCode);

        var summary = await ApiAssert.JsonAsync(await replaying, HttpStatusCode.Created);
        Assert.Equal("Connection killed.", summary.GetProperty("error").GetString());
        Assert.False(replay.IsLive);
    }
}
