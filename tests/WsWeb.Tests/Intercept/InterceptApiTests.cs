using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Intercept;

public sealed class InterceptApiTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    // A message a previous test left held would be counted in "held".
    public Task InitializeAsync() => app.ResetAndDropHeldAsync();

    public Task DisposeAsync() => app.ResetAsync();

    private async Task SetInterceptAsync(object body)
    {
        var state = await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), body));
        Assert.True(state.GetProperty("enabled").GetBoolean());
    }

    private async Task<JsonElement> WaitForHeldAsync(string flowId, int count = 1)
    {
        JsonElement held = default;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            held = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"));
            if (held.EnumerateArray().Count(h => h.GetProperty("flowId").GetString() == flowId) >= count)
            {
                return held;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("message not held: " + held);
    }

    [Fact]
    public async Task Hold_edit_release_arrives_edited_and_later_messages_wait_behind_it()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b secret" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        await client.SendTextAsync("the secret");
        await client.SendTextAsync("after");
        var held = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id);
        var index = held.GetProperty("index").GetInt64();
        Assert.Equal("the secret", held.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("held", held.GetProperty("message").GetProperty("resolution").GetString());

        // The same direction waits behind the held message; the other direction keeps flowing.
        var injected = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages", new { toClient = true, content = "server side still flows" });
        Assert.Equal(HttpStatusCode.Created, injected.StatusCode);
        Assert.Equal("server side still flows", await client.ReceiveTextAsync());
        Assert.Empty(server.Received);

        var state = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"));
        Assert.Equal("~wq & ~b secret", state.GetProperty("filter").GetString());
        Assert.Equal(1, state.GetProperty("held").GetInt32());

        var released = await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "the [redacted]" }));
        Assert.Equal("edited", released.GetProperty("resolution").GetString());
        Assert.True(released.GetProperty("edited").GetBoolean());
        Assert.Equal("the secret", released.GetProperty("originalContent").GetString());

        Assert.Equal("the [redacted]", await client.ReceiveTextAsync());
        Assert.Equal("after", await client.ReceiveTextAsync());
        Assert.Equal(["the [redacted]", "after"], server.Texts.ToList());

        var recorded = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={index - 1}&limit=1"));
        var message = recorded.GetProperty("messages")[0];
        Assert.Equal("the [redacted]", message.GetProperty("content").GetString());
        Assert.Equal("the secret", message.GetProperty("originalContent").GetString());
        Assert.Equal("edited", message.GetProperty("resolution").GetString());

        // Released once: a second decision is a conflict.
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/drop", UriKind.Relative), null), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Release_without_a_body_forwards_unchanged()
    {
        await SetInterceptAsync(new { filter = "~wq" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendBinaryAsync([9, 8, 7]);
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();
        await app.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative));

        var released = await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/release", UriKind.Relative), null));
        Assert.Equal("released", released.GetProperty("resolution").GetString());
        Assert.False(released.GetProperty("edited").GetBoolean());
        Assert.Equal(new byte[] { 9, 8, 7 }, (await client.ReceiveAsync()).Data);
        Assert.Equal(new byte[] { 9, 8, 7 }, Assert.Single(server.Received).Data);
    }

    [Fact]
    public async Task Hold_then_drop_never_arrives()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b drop-me" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("drop-me please");
        await client.SendTextAsync("keep me");
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();

        var dropped = await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/drop", UriKind.Relative), null));
        Assert.True(dropped.GetProperty("dropped").GetBoolean());
        Assert.Equal("dropped", dropped.GetProperty("resolution").GetString());

        Assert.Equal("keep me", await client.ReceiveTextAsync());
        Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(["keep me"], server.Texts.ToList());
        Assert.Empty((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray());
    }

    /// <summary>
    /// The race a release can lose: it is decided, then the server is sent a close before the message goes out. The
    /// relay marks it dropped, and the record says flow-ended, not a release that never arrived.
    /// </summary>
    [Fact]
    public async Task A_message_released_after_its_peer_was_sent_a_close_is_recorded_as_dropped_flow_ended()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b late" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("late words");
        var index = await app.HeldIndexAsync(flow.Id);

        // The API refuses a release once the close is sent; a decision taken just before the close gets here.
        var control = app.Services.GetRequiredService<WsWeb.Core.Addons.IWebSocketControl>();
        await control.CloseAsync(flow, WsWeb.Core.Addons.CloseTarget.Server, 1000, "bye");
        var intercept = app.Services.GetRequiredService<WsWeb.Intercept.InterceptService>();
        var held = intercept.Snapshot().Single(h => h.Flow.Id == flow.Id);
        Assert.True(intercept.TryResolve(held, drop: false, newContent: null, WsWeb.Intercept.HoldResolutions.Released));

        await Eventually.AssertAsync(() => held.Message.Dropped, "the relay found the server closed and did not send it");
        var message = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={index - 1}&limit=1"))).GetProperty("messages")[0];
        Assert.True(message.GetProperty("dropped").GetBoolean());
        Assert.Equal("flow-ended", message.GetProperty("resolution").GetString());
        Assert.Empty(server.Texts);
    }

    [Fact]
    public async Task Held_messages_are_listed_in_order_and_leave_the_list_when_the_flow_ends()
    {
        await SetInterceptAsync(new { filter = "~ws" });
        var (client1, _, flow1) = await app.ConnectAsync();
        await using var c1 = client1;
        var (client2, _, flow2) = await app.ConnectAsync();
        await using var c2 = client2;
        await client2.SendTextAsync("second flow first");
        await WaitForHeldAsync(flow2.Id);
        await client1.SendTextAsync("first flow second");
        await WaitForHeldAsync(flow1.Id);

        var held = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray().Select(h => h.GetProperty("flowId").GetString()).ToList();
        Assert.Equal([flow2.Id, flow1.Id], held);

        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostAsync(new Uri($"/api/flows/{flow2.Id}/kill", UriKind.Relative), null)).StatusCode);
        await Eventually.AssertAsync(() => !flow2.IsLive, "the flow ended");
        var after = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray().Select(h => h.GetProperty("flowId").GetString()).ToList();
        Assert.Equal([flow1.Id], after);
        var message = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow2.Id}/messages?filter=~ws"))).GetProperty("messages")[0];
        Assert.Equal("flow-ended", message.GetProperty("resolution").GetString());
        Assert.True(message.GetProperty("dropped").GetBoolean());
    }

    [Fact]
    public async Task A_message_held_when_its_flow_is_killed_is_recorded_as_dropped_over_rest_and_the_hub()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b hold" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await using var hub = await Hubs.HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeFlow", flow.Id);
        await client.SendTextAsync("hold me");
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();

        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null)).StatusCode);
        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");

        // It never reached the server, so it is dropped, as docs/rest.md says of every flow-ended message.
        var message = (await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages?after={index - 1}&limit=1"))).GetProperty("messages")[0];
        Assert.Equal("flow-ended", message.GetProperty("resolution").GetString());
        Assert.True(message.GetProperty("dropped").GetBoolean(), message.ToString());
        Assert.Empty(server.Received);
        // A change, or the add itself when the hub had not sent it yet: an add is written as the message is when it goes.
        await hub.ReceiveUntilAsync(i => i.Target is "MessagesChanged" or "MessagesAdded" && i.Array(1).Any(m =>
            m.GetProperty("index").GetInt64() == index && m.GetProperty("resolution").GetString() == "flow-ended" && m.GetProperty("dropped").GetBoolean()));
    }

    [Fact]
    public async Task A_held_injection_answers_409_when_its_flow_is_killed()
    {
        await SetInterceptAsync(new { filter = "~injected" });
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;

        var inject = app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait=300", new { toClient = false, type = "text", content = "held injection" });
        await WaitForHeldAsync(flow.Id);
        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/kill", UriKind.Relative), null)).StatusCode);

        // The API call that injected must not hang on a message that can no longer be sent.
        var answer = await inject.WaitAsync(TimeSpan.FromSeconds(10));
        await ApiAssert.ProblemAsync(answer, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Nothing_goes_to_a_peer_already_sent_a_close_and_the_flow_does_not_pretend_it_did()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b hold" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("hold me");
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();
        var inject = app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait=300", new { toClient = false, type = "text", content = "queued injection" });
        await Task.Delay(300);   // most often the injection is queued behind the held message by now; both orders are checked below

        Assert.Equal(HttpStatusCode.NoContent, (await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/close", new { target = "server", code = 4000, reason = "maintenance" })).StatusCode);
        await server.CloseReceived.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Released now, the held message could only be thrown away: the API says so and leaves the choice.
        var refused = await ApiAssert.ProblemAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "edited" }), HttpStatusCode.Conflict);
        Assert.Contains("server", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("close", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/drop", UriKind.Relative), null));

        // The injection is refused with the real reason whether it was queued before the close or came after it;
        // one that was queued (and so recorded) is marked as not sent.
        var failed = await ApiAssert.ProblemAsync(await inject.WaitAsync(TimeSpan.FromSeconds(10)), HttpStatusCode.Conflict);
        Assert.Contains("the server was", failed.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("sent a close", failed.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.All(flow.WebSocket!.Messages.Where(m => m.Injected), m => Assert.True(m.Dropped));
        Assert.Empty(server.Received);
    }

    [Fact]
    public async Task Held_list_has_whole_contents_and_previews_on_request_cut_at_a_whole_character()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b hold" });
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;

        // 'é' is two bytes in UTF-8 and the one spanning byte 4096 is left out whole: 5 + 2045 * 2 = 4095 bytes.
        var text = "hold!" + new string('é', 3000);
        await client.SendTextAsync(text);
        var held = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id);
        Assert.False(held.GetProperty("truncated").GetBoolean());
        Assert.Equal(text, held.GetProperty("message").GetProperty("content").GetString());

        var preview = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held?preview=true"))).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id);
        Assert.True(preview.GetProperty("truncated").GetBoolean());
        Assert.Equal(Encoding.UTF8.GetByteCount(text), preview.GetProperty("message").GetProperty("length").GetInt32());
        Assert.Equal(text[..2050], preview.GetProperty("message").GetProperty("content").GetString());

        // A binary message's preview is its first 4096 bytes, in base64; one that fits is not cut.
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{held.GetProperty("index").GetInt64()}/release", UriKind.Relative), null));
        Assert.Equal(text, await client.ReceiveTextAsync());
        var binary = Encoding.ASCII.GetBytes("hold").Concat(Enumerable.Range(0, 6000).Select(i => (byte)i)).ToArray();
        await client.SendBinaryAsync(binary);
        var binaryIndex = held.GetProperty("index").GetInt64() + 2;
        await WaitForHeldAsync(flow.Id);
        var binaryPreview = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held?preview=true"))).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id);
        Assert.Equal(binaryIndex, binaryPreview.GetProperty("index").GetInt64());
        Assert.True(binaryPreview.GetProperty("truncated").GetBoolean());
        Assert.Equal("base64", binaryPreview.GetProperty("message").GetProperty("encoding").GetString());
        Assert.Equal(Convert.ToBase64String(binary, 0, 4096), binaryPreview.GetProperty("message").GetProperty("content").GetString());
        var binaryWhole = (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept/held"))).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id);
        Assert.False(binaryWhole.GetProperty("truncated").GetBoolean());
        Assert.Equal(Convert.ToBase64String(binary), binaryWhole.GetProperty("message").GetProperty("content").GetString());

        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/intercept/held?preview=maybe"), "preview");
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync("/api/intercept/held?preview=true&preview=false"), "preview");
        // Only the released text went on; the binary message is still held (and is not left held for the next test).
        Assert.Equal(text, Assert.Single(server.Texts));
        Assert.Single(server.Received);
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{binaryIndex}/drop", UriKind.Relative), null));
    }

    [Fact]
    public async Task The_dashboards_held_list_carries_previews_and_points_the_editor_at_the_whole_content()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b hold" });
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        var text = "hold" + new string('x', 900_000);
        await client.SendTextAsync(text);
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();

        // The intercept page re-reads this fragment on every HeldChanged.
        var html = await (await app.Api.GetAsync("/ui/intercept/held")).Content.ReadAsStringAsync();
        Assert.True(html.Length < 16 * 1024, $"the held list fragment is {html.Length} characters for one held message");
        var document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(html);
        var textarea = document.QuerySelector($".held-card[data-key='{flow.Id}/{index}'] textarea[name=content]")!;
        Assert.True(textarea.HasAttribute("readonly"));
        Assert.Equal($"/api/flows/{flow.Id}/messages/{index}/content", textarea.GetAttribute("data-content-url"));
        Assert.Equal(text[..4096], textarea.TextContent);
        Assert.True(document.QuerySelector(".held-card button[type=submit]")!.HasAttribute("disabled"), "Release waits for the whole content");
        Assert.Equal(text, await (await app.Api.GetAsync(textarea.GetAttribute("data-content-url")!)).Content.ReadAsStringAsync());

        // Not left held for the next test.
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/drop", UriKind.Relative), null));
    }

    [Theory]
    [InlineData("""{"filter":"~wq &"}""", "filter")]
    [InlineData("""{"filter":""}""", "filter")]
    [InlineData("""{}""", "filter")]
    [InlineData("""{"filter":"~wq","timeoutSeconds":0}""", "timeoutSeconds")]
    [InlineData("""{"filter":"~wq","timeoutSeconds":-5}""", "timeoutSeconds")]
    [InlineData("""{"filter":"~wq","timeoutSeconds":1e-300}""", "timeoutSeconds")]
    [InlineData("""{"filter":"~wq","timeoutSeconds":0.0009}""", "timeoutSeconds")]
    [InlineData("""{"filter":"~wq","timeoutSeconds":86401}""", "timeoutSeconds")]
    [InlineData("""{"filter":"~wq","timeoutAction":"ignore"}""", "timeoutAction")]
    public async Task Bad_intercept_settings_are_a_400_naming_the_field(string body, string field)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        await ApiAssert.InvalidFieldAsync(await app.Api.PutAsync(new Uri("/api/intercept", UriKind.Relative), content), field);
        Assert.False((await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task A_one_millisecond_timeout_is_the_shortest_accepted()
    {
        await SetInterceptAsync(new { filter = "~wq & ~b never-sent", timeoutSeconds = 0.001 });
        Assert.Equal(0.001, (await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"))).GetProperty("timeoutSeconds").GetDouble());
    }

    [Fact]
    public async Task Clearing_intercept_turns_it_off()
    {
        await SetInterceptAsync(new { filter = "~text", timeoutSeconds = 5, timeoutAction = "drop" });
        var state = await ApiAssert.JsonAsync(await app.Api.GetAsync("/api/intercept"));
        Assert.Equal(5, state.GetProperty("timeoutSeconds").GetDouble());
        Assert.Equal("drop", state.GetProperty("timeoutAction").GetString());
        var cleared = await ApiAssert.JsonAsync(await app.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative)));
        Assert.False(cleared.GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task Release_and_drop_errors_name_what_is_wrong()
    {
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri("/api/intercept/held/nope/0/release", UriKind.Relative), null), HttpStatusCode.NotFound);
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri("/api/intercept/held/nope/0/drop", UriKind.Relative), null), HttpStatusCode.NotFound);

        await SetInterceptAsync(new { filter = "~wq & ~b hold" });
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("not held");
        await client.ReceiveTextAsync();
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/0/release", UriKind.Relative), null), HttpStatusCode.Conflict);
        await ApiAssert.ProblemAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/99/release", UriKind.Relative), null), HttpStatusCode.NotFound);

        await client.SendTextAsync("hold this");
        var index = (await WaitForHeldAsync(flow.Id)).EnumerateArray().Single(h => h.GetProperty("flowId").GetString() == flow.Id).GetProperty("index").GetInt64();
        await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "x", encoding = "morse" }), "encoding");
        await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "c3", encoding = "hex" }), "content");
        await ApiAssert.InvalidFieldAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = Convert.ToBase64String(new byte[(1024 * 1024) + 1]), encoding = "base64" }), "content");

        // Still held after the bad attempts.
        await ApiAssert.JsonAsync(await app.Api.PostJsonAsync($"/api/intercept/held/{flow.Id}/{index}/release", new { content = "686f6c64", encoding = "hex" }));
        Assert.Equal("hold", await client.ReceiveTextAsync());
    }
}
