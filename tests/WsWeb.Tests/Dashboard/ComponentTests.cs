using WsWeb.Api;
using WsWeb.Components.Pages;
using WsWeb.Components.Shared;
using WsWeb.Core.Flows;
using WsWeb.Dashboard;
using WsWeb.Intercept;
using WsWeb.Rules;
using static WsWeb.Tests.Dashboard.ComponentRenderer;

namespace WsWeb.Tests.Dashboard;

public sealed class ComponentTests
{
    [Fact]
    public async Task Flow_rows_show_time_client_url_subprotocol_state_counts_and_bytes()
    {
        var doc = await RenderRowsAsync<FlowRows>(new() { ["Flows"] = new List<FlowSummary> { TestData.Flow("a"), TestData.Flow("b", live: false, closeCode: 4001) } });
        var rows = doc.QuerySelectorAll("tr.flow-row");
        Assert.Equal(2, rows.Length);
        var open = rows[0];
        Assert.Equal("a", open.GetAttribute("data-id"));
        Assert.Equal(TestData.Start.ToString(System.Globalization.CultureInfo.InvariantCulture), open.QuerySelector("time")!.GetAttribute("data-ts"));
        Assert.Equal("127.0.0.1:50123", open.QuerySelector(".c-client")!.TextContent);
        Assert.Equal("/flows/a", open.QuerySelector(".c-url a")!.GetAttribute("href"));
        Assert.Equal("ws://echo.example/socket?room=1", open.QuerySelector(".c-url a")!.TextContent);
        Assert.Equal("WS", open.QuerySelector(".c-url .flow-kind")!.TextContent);
        Assert.Equal("chat.v2", open.QuerySelector(".c-proto")!.TextContent);
        Assert.Equal("open", open.QuerySelector(".c-state .badge")!.TextContent);
        Assert.Contains("text-bg-success", open.QuerySelector(".c-state .badge")!.ClassName, StringComparison.Ordinal);
        Assert.Equal(["3", "4"], open.QuerySelectorAll(".c-num").Select(c => c.TextContent));
        Assert.Equal("2 kB", open.QuerySelector(".c-bytes")!.TextContent);

        var closed = rows[1].QuerySelector(".c-state .badge")!;
        Assert.Equal("closed 4001", closed.TextContent);
        Assert.Equal("closed by client: 4001 bye", closed.GetAttribute("title"));
    }

    [Fact]
    public async Task Flow_table_shows_an_empty_state_without_flows()
    {
        var doc = await RenderAsync<FlowTable>(new() { ["Flows"] = new List<FlowSummary>() });
        Assert.False(doc.QuerySelector("#flows-empty")!.ClassList.Contains("d-none"));
        Assert.Empty(doc.QuerySelectorAll("#flow-rows tr"));
        Assert.Equal(["Time", "Client", "URL", "Protocol", "State", "↑ msgs", "↓ msgs", "Bytes"], doc.QuerySelectorAll("thead th").Select(th => th.TextContent));
    }

    [Fact]
    public async Task Filter_check_points_at_the_error_position()
    {
        var doc = await RenderAsync<FilterCheck>(new() { ["Expression"] = "~wq & ~zz" });
        var error = doc.QuerySelector(".filter-error")!;
        Assert.Equal("6", error.GetAttribute("data-position"));
        Assert.Contains("~zz", error.QuerySelector(".filter-error-message")!.TextContent, StringComparison.Ordinal);
        var caret = error.QuerySelector(".filter-caret .text-danger")!.TextContent;
        Assert.Equal(6, caret.IndexOf('^', StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("~websocket & ~d example.com")]
    public async Task Filter_check_is_empty_for_valid_expressions(string? expression)
    {
        var doc = await RenderAsync<FilterCheck>(new() { ["Expression"] = expression });
        Assert.Null(doc.QuerySelector(".filter-error"));
    }

    [Fact]
    public async Task Flow_header_shows_why_a_plain_http_flow_failed()
    {
        var failed = TestData.Detail(live: false) with { WebSocket = null, Error = "WsWeb could not reach 127.0.0.1:9: Connection refused (ConnectionRefused)." };

        var doc = await RenderAsync<FlowHeader>(new() { ["Flow"] = failed });

        Assert.Contains("could not reach 127.0.0.1:9", doc.QuerySelector("#flow-error")!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Filter_box_validates_through_htmx_and_marks_a_bad_value()
    {
        var doc = await RenderAsync<FilterBox>(new() { ["Id"] = "f", ["Value"] = "~bogus" });
        var input = doc.QuerySelector("input#f")!;
        Assert.Equal("/ui/filter-check", input.GetAttribute("hx-get"));
        Assert.Equal("filter", input.GetAttribute("name"));
        Assert.Contains("is-invalid", input.ClassName, StringComparison.Ordinal);
        Assert.NotNull(doc.QuerySelector(".filter-feedback .filter-error"));
    }

    [Fact]
    public async Task Message_rows_show_direction_type_size_time_preview_and_badges()
    {
        var messages = new List<MessageView>
        {
            TestData.Text(0, "hello\nworld"),
            TestData.Text(1, "pong", fromClient: false, injected: true),
            TestData.Text(2, "secret", dropped: true),
            TestData.Text(3, "new", original: "old"),
            TestData.Text(4, "wait", resolution: "held"),
            TestData.Binary(5, [0xde, 0xad, 0xbe, 0xef]),
        };
        var doc = await RenderRowsAsync<MessageRows>(new() { ["Messages"] = messages, ["FlowStart"] = TestData.Start });
        var rows = doc.QuerySelectorAll("tr.msg-row");
        Assert.Equal(6, rows.Length);
        Assert.Equal("→", rows[0].QuerySelector(".c-dir .dir-out")!.TextContent);
        Assert.Equal("←", rows[1].QuerySelector(".c-dir .dir-in")!.TextContent);
        Assert.Equal("text", rows[0].QuerySelector(".c-type")!.TextContent);
        Assert.Equal("11 B", rows[0].QuerySelector(".c-size")!.TextContent);
        Assert.Equal("+1.500", rows[0].QuerySelector(".c-rel")!.TextContent);
        Assert.Equal("hello⏎world", rows[0].QuerySelector(".c-preview")!.TextContent);
        Assert.Equal(["injected"], rows[1].QuerySelectorAll(".badge").Select(b => b.TextContent));
        Assert.Equal(["dropped"], rows[2].QuerySelectorAll(".badge").Select(b => b.TextContent));
        Assert.Contains("msg-dropped", rows[2].ClassName, StringComparison.Ordinal);
        Assert.Equal(["edited"], rows[3].QuerySelectorAll(".badge").Select(b => b.TextContent));
        Assert.Equal(["held"], rows[4].QuerySelectorAll(".badge").Select(b => b.TextContent));
        Assert.Equal("de ad be ef", rows[5].QuerySelector(".c-preview")!.TextContent);
        Assert.Equal("5", rows[5].GetAttribute("data-index"));
    }

    [Fact]
    public async Task Previews_and_the_text_view_show_characters_that_would_hide_or_reorder_text()
    {
        // An RLO would display "override nul" as "lun edirrevo": the screen would not match the bytes.
        var message = TestData.Text(0, "a \u202e override \u0000 nul");
        var rows = await RenderRowsAsync<MessageRows>(new() { ["Messages"] = new List<MessageView> { message }, ["FlowStart"] = TestData.Start });
        Assert.Equal("a ⟨U+202E⟩ override ␀ nul", rows.QuerySelector(".c-preview")!.TextContent);

        var view = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = message, ["View"] = "text" });
        var text = view.QuerySelector("pre.payload")!.TextContent;
        Assert.StartsWith("a ⟨U+202E⟩ override ", text, StringComparison.Ordinal);
        Assert.DoesNotContain('\u202e', text);
    }

    [Fact]
    public async Task Message_content_opens_json_pretty_by_default_and_offers_text_and_hex()
    {
        var doc = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(7, """{"type":"ping","n":1}""") });
        var content = doc.QuerySelector(".message-content")!;
        Assert.Equal("json", content.GetAttribute("data-view"));
        Assert.Equal("{\n  \"type\": \"ping\",\n  \"n\": 1\n}", doc.QuerySelector("pre.payload")!.TextContent);
        Assert.Equal(["text", "json", "hex"], doc.QuerySelectorAll("button[data-view]").Select(b => b.GetAttribute("data-view")));
        Assert.Equal("json", doc.QuerySelector("button.active")!.GetAttribute("data-view"));
        Assert.Equal("/api/flows/f1/messages/7/content", doc.QuerySelector("a[href$='/content']")!.GetAttribute("href"));
    }

    [Fact]
    public async Task Message_content_hex_view_is_a_hex_dump()
    {
        var doc = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(1, "Hello, WebSocket!"), ["View"] = "hex" });
        var dump = doc.QuerySelector("pre.payload-hex")!.TextContent;
        Assert.StartsWith("00000000  48 65 6c 6c 6f 2c 20 57  65 62 53 6f 63 6b 65 74  Hello, WebSocket", dump, StringComparison.Ordinal);
        Assert.Contains("00000010  21", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Binary_messages_open_as_hex_and_text_view_says_so()
    {
        var hex = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Binary(2, [0x00, 0x41]) });
        Assert.Equal("hex", hex.QuerySelector(".message-content")!.GetAttribute("data-view"));
        var text = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Binary(2, [0x00, 0x41]), ["View"] = "text" });
        Assert.Contains("binary content shown as UTF-8", text.Body!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Edited_messages_show_the_forwarded_and_the_original_content()
    {
        var doc = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(3, "my [redacted]", original: "my secret"), ["View"] = "text" });
        var payloads = doc.QuerySelectorAll("pre.payload");
        Assert.Equal(["my [redacted]", "my secret"], payloads.Select(p => p.TextContent));
        Assert.Contains("payload-original", payloads[1].ClassName, StringComparison.Ordinal);
        Assert.Contains("Original", doc.Body!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_json_in_the_json_view_falls_back_to_text()
    {
        var doc = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(3, "{not json"), ["View"] = "json" });
        Assert.Equal("{not json", doc.QuerySelector("pre.payload")!.TextContent);
        Assert.Contains("not JSON", doc.Body!.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Flow_header_shows_counts_ping_pong_and_how_it_closed()
    {
        var doc = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) });
        Assert.Equal("false", doc.QuerySelector(".flow-header")!.GetAttribute("data-live"));
        Assert.Equal("closed 4000", doc.QuerySelector("#flow-state")!.TextContent);
        Assert.Equal("ping 2/1 · pong 1/2", doc.QuerySelector("#ping-pong")!.TextContent);
        Assert.Equal("3", doc.QuerySelector("#count-out")!.TextContent);
        Assert.Equal("4", doc.QuerySelector("#count-in")!.TextContent);
        var close = doc.QuerySelector("#close-info")!.TextContent;
        Assert.Contains("client", close, StringComparison.Ordinal);
        Assert.Contains("4000", close, StringComparison.Ordinal);
        Assert.Contains("bye", close, StringComparison.Ordinal);
        Assert.Equal(
            ["/api/flows/f1/export?format=json", "/api/flows/f1/export?format=har", "/api/flows/f1/export?format=mitmproxy"],
            doc.QuerySelectorAll(".dropdown-menu a").Select(a => a.GetAttribute("href")));
    }

    [Fact]
    public async Task Flow_header_offers_delete_for_a_finished_flow_and_says_why_not_for_a_live_one()
    {
        var finished = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) });
        var delete = finished.QuerySelector("#flow-delete")!;
        Assert.False(delete.HasAttribute("disabled"));
        Assert.Equal("/api/flows/f1", delete.GetAttribute("data-api"));
        Assert.Equal("DELETE", delete.GetAttribute("data-method"));
        Assert.Equal("Delete this flow from WsWeb? Its messages go with it.", delete.GetAttribute("data-confirm"));

        var live = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: true) });
        Assert.True(live.QuerySelector("#flow-delete")!.HasAttribute("disabled"));
        Assert.Contains("close or kill it first", live.QuerySelector("#flow-delete-wrap")!.GetAttribute("title"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Flow_header_offers_replay_with_resend_for_a_websocket_and_plain_replay_for_a_request()
    {
        var ws = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) });
        var form = ws.QuerySelector("#flow-replay-form")!;
        Assert.Equal("/api/flows/f1/replay", form.GetAttribute("data-api"));
        Assert.Equal("POST", form.GetAttribute("data-method"));
        Assert.Equal("#flow-replay-problem", form.GetAttribute("data-problem"));
        Assert.Equal("submit", ws.QuerySelector("#flow-replay")!.GetAttribute("type"));
        Assert.False(ws.QuerySelector("#flow-replay")!.HasAttribute("disabled"));
        var resend = (AngleSharp.Html.Dom.IHtmlInputElement)ws.QuerySelector("#flow-replay-resend")!;
        Assert.Equal(("checkbox", "resend", false), (resend.Type, resend.Name, resend.IsChecked));
        Assert.Same(form, resend.Form);

        // A live flow replays too (a second connection with the same handshake).
        var live = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: true) });
        Assert.False(live.QuerySelector("#flow-replay")!.HasAttribute("disabled"));

        Assert.Equal("Send this handshake again on a new connection, WsWeb as its client (a new flow)", ws.QuerySelector("#flow-replay-form")!.GetAttribute("title"));

        // An upgrade the server refused goes again as a handshake, but has no client messages to resend; nor has a
        // plain request.
        var refused = TestData.Detail(live: false) with { WebSocket = null, Summary = TestData.Flow(live: false) with { IsWebSocket = false, Status = 426 } };
        var upgrade = await RenderAsync<FlowHeader>(new() { ["Flow"] = refused });
        Assert.NotNull(upgrade.QuerySelector("#flow-replay"));
        Assert.Null(upgrade.QuerySelector("#flow-replay-resend"));
        Assert.StartsWith("Send this handshake again", upgrade.QuerySelector("#flow-replay-form")!.GetAttribute("title"), StringComparison.Ordinal);
        var plain = await RenderAsync<FlowHeader>(new() { ["Flow"] = refused with { Request = refused.Request with { Headers = [new("Host", "echo.example")] } } });
        Assert.Null(plain.QuerySelector("#flow-replay-resend"));
        Assert.Equal("Send this request again as a new flow", plain.QuerySelector("#flow-replay-form")!.GetAttribute("title"));

        // A CONNECT is the tunnel, not a request to send again: no Replay.
        var connect = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) with { WebSocket = null, Summary = TestData.Flow(live: false) with { Method = "CONNECT", IsWebSocket = false } } });
        Assert.Null(connect.QuerySelector("#flow-replay-form"));
        Assert.NotNull(connect.QuerySelector("#flow-delete"));
    }

    [Fact]
    public async Task Replay_is_disabled_with_the_reason_for_a_request_whose_body_was_recorded_only_in_part()
    {
        static HttpFlow Post(byte[] content, long length, bool truncated, bool handshake = false) => new(
            new HttpRequestData
            {
                Method = "POST", Scheme = "http", Host = "api.example", Port = 80, Path = "/upload",
                Headers = handshake ? [new("Upgrade", "WebSocket")] : [],
                Content = content, ContentLength = length, ContentTruncated = truncated,
            },
            TestData.Start);

        var truncated = Post([1, 2, 3], 5000, truncated: true);
        var refusal = FlowHeader.RefusesReplay(truncated);
        Assert.Equal("This request's body was recorded only in part (3 of 5000 bytes): WsWeb sends a request again only as it was, so it cannot be replayed.", refusal);
        var doc = await RenderAsync<FlowHeader>(new() { ["Flow"] = FlowDetail.From(truncated), ["ReplayRefused"] = refusal });
        Assert.True(doc.QuerySelector("#flow-replay")!.HasAttribute("disabled"));
        Assert.Equal(refusal, doc.QuerySelector("#flow-replay-form")!.GetAttribute("title"));

        // Shorter than its length without the flag is the same (an import that lost the rest); a whole body is not.
        Assert.NotNull(FlowHeader.RefusesReplay(Post([1, 2, 3], 4, truncated: false)));
        Assert.Null(FlowHeader.RefusesReplay(Post([1, 2, 3], 3, truncated: false)));
        Assert.Null(FlowHeader.RefusesReplay(Post([], 0, truncated: false)));
        // A handshake's body is not sent again, so it does not matter (as the replay API).
        Assert.Null(FlowHeader.RefusesReplay(Post([1], 10, truncated: true, handshake: true)));
    }

    [Fact]
    public async Task A_replay_shows_its_badge_and_links_to_its_original_while_that_is_kept()
    {
        var replay = TestData.Detail(live: true) with { Summary = TestData.Flow("r1") with { Replay = "request", ReplayOf = "orig-1" } };

        var kept = await RenderAsync<FlowHeader>(new() { ["Flow"] = replay, ["OriginalKept"] = true });
        Assert.Equal("replay", kept.QuerySelector("#flow-replay-badge")!.TextContent);
        Assert.Equal("its request was sent again (a replay)", kept.QuerySelector("#flow-replay-badge")!.GetAttribute("title"));
        var link = kept.QuerySelector("#flow-replay-of a")!;
        Assert.Equal("/flows/orig-1", link.GetAttribute("href"));
        Assert.Equal("orig-1", link.TextContent);
        Assert.Equal("Replay of orig-1", Normalize(kept.QuerySelector("#flow-replay-of")!.TextContent));

        var gone = await RenderAsync<FlowHeader>(new() { ["Flow"] = replay, ["OriginalKept"] = false });
        Assert.Null(gone.QuerySelector("#flow-replay-of a"));
        Assert.Equal("Replay of orig-1 (no longer here)", Normalize(gone.QuerySelector("#flow-replay-of")!.TextContent));

        // mitmproxy's server replay, imported: a replay with no original here.
        var served = await RenderAsync<FlowHeader>(new() { ["Flow"] = replay with { Summary = replay.Summary with { Replay = "response", ReplayOf = null } } });
        Assert.Contains("server replay", served.QuerySelector("#flow-replay-badge")!.GetAttribute("title"), StringComparison.Ordinal);
        Assert.Null(served.QuerySelector("#flow-replay-of"));

        var plain = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) });
        Assert.Null(plain.QuerySelector("#flow-replay-badge"));
        Assert.Null(plain.QuerySelector("#flow-replay-of"));

        static string Normalize(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ").Trim();
    }

    [Fact]
    public async Task Flow_rows_mark_replays()
    {
        var doc = await RenderRowsAsync<FlowRows>(new() { ["Flows"] = new List<FlowSummary> { TestData.Flow("r") with { Replay = "request", ReplayOf = "a" }, TestData.Flow("a") } });
        var rows = doc.QuerySelectorAll("tr.flow-row");

        var badge = rows[0].QuerySelector(".c-state .badge.replay")!;
        Assert.Equal("replay", badge.TextContent);
        Assert.Equal("its request was sent again (a replay)", badge.GetAttribute("title"));
        Assert.Null(rows[1].QuerySelector(".badge.replay"));
    }

    [Fact]
    public async Task A_plain_http_flow_shows_its_request_and_response_with_bodies_and_counts_body_bytes_in_the_header()
    {
        var flow = new HttpFlow(
            new HttpRequestData
            {
                Method = "POST", Scheme = "http", Host = "api.example", Port = 80, Path = "/login",
                Headers = [new("Content-Type", "application/json")],
                Content = "{\"user\":\"alice\"}"u8.ToArray(), ContentLength = 16,
            },
            TestData.Start)
        {
            Response = new HttpResponseData
            {
                StatusCode = 403, Reason = "Forbidden", Headers = [new("Content-Type", "application/octet-stream")],
                Content = [0xde, 0xad, 0xbe, 0xef, 0xff], ContentLength = 5,
            },
        };
        var detail = FlowDetail.From(flow);

        var doc = await RenderAsync<HttpExchange>(new() { ["Flow"] = flow, ["Detail"] = detail });
        Assert.Equal("POST /login HTTP/1.1", doc.QuerySelector("#http-request-line")!.TextContent);
        Assert.Contains("application/json", doc.QuerySelector("#http-exchange table")!.TextContent, StringComparison.Ordinal);
        Assert.Contains("\"user\": \"alice\"", doc.QuerySelector("#http-request-body pre.payload-json")!.TextContent, StringComparison.Ordinal);
        Assert.Equal("HTTP/1.1 403 Forbidden", doc.QuerySelector("#http-status-line")!.TextContent);
        Assert.Contains("de ad be ef ff", doc.QuerySelector("#http-response-body pre.payload-hex")!.TextContent, StringComparison.Ordinal);
        Assert.Contains("binary", doc.QuerySelector("#http-response-body")!.TextContent, StringComparison.Ordinal);

        var header = await RenderAsync<FlowHeader>(new() { ["Flow"] = detail });
        Assert.Equal("16 B", header.QuerySelector("#body-out")!.TextContent);
        Assert.Equal("5 B", header.QuerySelector("#body-in")!.TextContent);
        Assert.Null(header.QuerySelector("#count-out"));
    }

    [Fact]
    public async Task Times_a_person_reads_are_time_elements_the_page_script_localizes_with_utc_in_the_title()
    {
        static void AssertTime(AngleSharp.Dom.IElement? time, double timestamp, string clock)
        {
            Assert.NotNull(time);
            Assert.Equal(timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture), time.GetAttribute("data-ts"));
            Assert.Equal(Fmt.Iso(timestamp), time.GetAttribute("title"));
            Assert.Equal(clock, time.TextContent);
        }

        var header = await RenderAsync<FlowHeader>(new() { ["Flow"] = TestData.Detail(live: false) });
        AssertTime(header.QuerySelector("#close-info time"), TestData.Start + 5, "22:13:25.000");
        Assert.DoesNotContain("UTC", header.QuerySelector("#close-info")!.TextContent, StringComparison.Ordinal);

        var content = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(3, "hi") });
        AssertTime(content.QuerySelector(".message-content time"), TestData.Start + 4.5, "22:13:24.500");
        Assert.DoesNotContain("UTC", content.QuerySelector(".message-content")!.TextContent, StringComparison.Ordinal);

        var connection = await RenderAsync<ConnectionDetails>(new() { ["Title"] = "Client", ["Connection"] = TestData.Detail().ClientConn });
        AssertTime(connection.QuerySelector("time"), TestData.Start, "22:13:20.000");

        var held = await RenderAsync<HeldList>(new() { ["Held"] = new List<HeldView> { new("f1", "ws://echo.example/a", 4, TestData.Start + 1, TestData.Start + 31, TestData.Text(4, "x")) } });
        Assert.All(held.QuerySelectorAll("time"), t => Assert.Equal(Fmt.Iso(double.Parse(t.GetAttribute("data-ts")!, System.Globalization.CultureInfo.InvariantCulture)), t.GetAttribute("title")));
        Assert.Equal(2, held.QuerySelectorAll("time").Length);
    }

    [Fact]
    public async Task Flow_actions_post_to_the_rest_api_and_are_disabled_when_not_live()
    {
        var live = await RenderAsync<FlowActions>(new() { ["FlowId"] = "f1", ["Live"] = true }, FlowActionsServices());
        Assert.False(live.QuerySelector("fieldset#flow-actions")!.HasAttribute("disabled"));
        // The page says what a waiting injection waits for, so it waits the most the API allows before a 202.
        Assert.Equal($"/api/flows/f1/messages?wait={WsWeb.Api.FlowsApi.MaxInjectWaitSeconds}", live.QuerySelector("#inject-form")!.GetAttribute("data-api"));
        Assert.Equal("/api/flows/f1/close", live.QuerySelector("#close-form")!.GetAttribute("data-api"));
        Assert.Equal("/api/flows/f1/kill", live.QuerySelector("#kill-form")!.GetAttribute("data-api"));
        Assert.Equal(["true", "false"], live.QuerySelectorAll("select[name=toClient] option").Select(o => o.GetAttribute("value")));
        Assert.Equal(["utf8", "hex", "base64"], live.QuerySelectorAll("select[name=encoding] option").Select(o => o.GetAttribute("value")));
        Assert.NotNull(live.QuerySelector("#close-form input[name=code][data-type=int]"));
        Assert.NotNull(live.QuerySelector("#close-form input[name=reason]"));

        var closed = await RenderAsync<FlowActions>(new() { ["FlowId"] = "f1", ["Live"] = false }, FlowActionsServices());
        Assert.True(closed.QuerySelector("fieldset#flow-actions")!.HasAttribute("disabled"));
    }

    private static Action<IServiceCollection> FlowActionsServices(long maxMessageSize = 1024 * 1024, long? serverBodyLimit = 30_000_000) => services =>
    {
        services.AddSingleton(new WsWeb.Proxy.ProxyOptions { MaxMessageSize = maxMessageSize });
        services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(kestrel => kestrel.Limits.MaxRequestBodySize = serverBodyLimit);
    };

    [Fact]
    public async Task Inject_form_carries_the_limits_a_resent_message_must_fit()
    {
        // What the API takes: the largest message, in a body of at least the server's limit, room for it in base64 past that.
        var small = await RenderAsync<FlowActions>(new() { ["FlowId"] = "f1", ["Live"] = true }, FlowActionsServices());
        Assert.Equal("1048576", small.QuerySelector("#inject-form")!.GetAttribute("data-max-message-size"));
        Assert.Equal("30000000", small.QuerySelector("#inject-form")!.GetAttribute("data-max-body"));

        var large = await RenderAsync<FlowActions>(new() { ["FlowId"] = "f1", ["Live"] = true }, FlowActionsServices(maxMessageSize: 64 * 1024 * 1024));
        Assert.Equal(((64L * 1024 * 1024 + 2) / 3 * 4 + 64 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), large.QuerySelector("#inject-form")!.GetAttribute("data-max-body"));

        var unlimited = await RenderAsync<FlowActions>(new() { ["FlowId"] = "f1", ["Live"] = true }, FlowActionsServices(serverBodyLimit: null));
        Assert.False(unlimited.QuerySelector("#inject-form")!.HasAttribute("data-max-body"));
    }

    [Fact]
    public async Task Message_content_offers_resend_with_the_message_direction_and_type_and_disables_it_on_a_closed_flow()
    {
        var live = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Binary(5, [1, 2, 3], fromClient: false), ["Live"] = true });
        var button = live.QuerySelector("#message-resend")!;
        Assert.False(button.HasAttribute("disabled"));
        Assert.Equal("button", button.GetAttribute("type")); // not a submit: it sends nothing
        Assert.Equal("5", button.GetAttribute("data-index"));
        Assert.Equal("false", button.GetAttribute("data-from-client"));
        Assert.Equal("binary", button.GetAttribute("data-type"));
        Assert.Equal("3", button.GetAttribute("data-length"));
        Assert.Equal(MessageContent.ResendTitle, live.QuerySelector("#message-resend-wrap")!.GetAttribute("title"));
        Assert.NotNull(live.QuerySelector("#resend-problem.problem"));

        var closed = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(2, "hi") });
        Assert.True(closed.QuerySelector("#message-resend")!.HasAttribute("disabled"));
        Assert.Equal("true", closed.QuerySelector("#message-resend")!.GetAttribute("data-from-client"));
        Assert.Equal(MessageContent.ClosedTitle, closed.QuerySelector("#message-resend-wrap")!.GetAttribute("title"));
    }

    [Fact]
    public async Task Handshake_and_connection_show_headers_and_tls()
    {
        var detail = TestData.Detail();
        var handshake = await RenderAsync<HandshakeView>(new() { ["Flow"] = detail });
        Assert.Contains(handshake.QuerySelectorAll("tr"), tr => tr.QuerySelector("th")!.TextContent == "Sec-WebSocket-Protocol" && tr.QuerySelector("td")!.TextContent == "chat.v2");
        Assert.Contains("101 Switching Protocols", handshake.Body!.TextContent, StringComparison.Ordinal);

        var server = await RenderAsync<ConnectionDetails>(new() { ["Title"] = "Server", ["Connection"] = detail.ServerConn });
        var text = server.Body!.TextContent;
        Assert.Contains("Tls13", text, StringComparison.Ordinal);
        Assert.Contains("TLS_AES_128_GCM_SHA256", text, StringComparison.Ordinal);
        Assert.Contains("CN=echo.example", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Held_list_shows_each_held_message_with_release_and_drop()
    {
        var held = new List<HeldView>
        {
            new("f1", "ws://echo.example/a", 4, TestData.Start + 1, null, TestData.Text(4, "my secret", resolution: "held")),
            new("f2", "ws://echo.example/b", 9, TestData.Start + 2, TestData.Start + 32, TestData.Binary(9, [1, 2, 3], fromClient: false)),
        };
        var doc = await RenderAsync<HeldList>(new() { ["Held"] = held });
        var cards = doc.QuerySelectorAll(".held-card");
        Assert.Equal(["f1/4", "f2/9"], cards.Select(c => c.GetAttribute("data-key")));
        Assert.Equal("/api/intercept/held/f1/4/release", cards[0].QuerySelector("form")!.GetAttribute("data-api"));
        Assert.Equal("/api/intercept/held/f1/4/drop", cards[0].QuerySelector("button[data-api]")!.GetAttribute("data-api"));
        Assert.Equal("my secret", cards[0].QuerySelector("textarea[name=content]")!.TextContent);
        Assert.Equal("utf8", cards[0].QuerySelector("select[name=encoding] option[selected]")!.GetAttribute("value"));
        Assert.Equal("AQID", cards[1].QuerySelector("textarea")!.TextContent);
        Assert.Equal("base64", cards[1].QuerySelector("select[name=encoding] option[selected]")!.GetAttribute("value"));

        var empty = await RenderAsync<HeldList>(new() { ["Held"] = new List<HeldView>() });
        Assert.NotNull(empty.QuerySelector("#held-empty"));
    }

    [Fact]
    public async Task Rule_table_lists_rules_with_details_and_actions()
    {
        var rules = new List<RuleView>
        {
            new("r1", "rename", "~ws & ~text", "replace", new ReplaceSpec("alice", "bob", null), null, true, 12, 0, 1),
            new("r2", "slow", "~ws", "delay", null, 500, false, 0, 3, 2),
        };
        var doc = await RenderAsync<RuleTable>(new() { ["Rules"] = rules });
        var rows = doc.QuerySelectorAll("tr.rule-row");
        Assert.Equal(2, rows.Length);
        Assert.Equal(["1", "2"], rows.Select(r => r.QuerySelector(".c-order")!.TextContent));
        Assert.Equal("alice → bob", rows[0].QuerySelectorAll("td")[4].TextContent);
        Assert.Equal("12", rows[0].QuerySelectorAll("td")[5].TextContent);
        Assert.True(rows[0].QuerySelector(".rule-up")!.HasAttribute("disabled"));
        Assert.False(rows[0].QuerySelector(".rule-down")!.HasAttribute("disabled"));
        Assert.True(rows[1].QuerySelector(".rule-down")!.HasAttribute("disabled"));
        Assert.Null(rows[0].QuerySelector(".c-slow"));
        Assert.Equal("3 slow", rows[1].QuerySelector(".c-slow")!.TextContent);
        Assert.Equal("on", rows[0].QuerySelector(".rule-toggle")!.TextContent);
        Assert.Equal("off", rows[1].QuerySelector(".rule-toggle")!.TextContent);
        Assert.Equal("500 ms", rows[1].QuerySelectorAll("td")[4].TextContent);
        Assert.NotNull(rows[0].QuerySelector("button.rule-delete"));

        // Each button names its rule for a screen reader; the toggle is a switch that says its state.
        var toggle = rows[1].QuerySelector(".rule-toggle")!;
        Assert.Equal("switch", toggle.GetAttribute("role"));
        Assert.Equal("false", toggle.GetAttribute("aria-checked"));
        Assert.StartsWith("Rule ", toggle.GetAttribute("aria-label"), StringComparison.Ordinal);
        Assert.StartsWith("Delete rule ", rows[0].QuerySelector(".rule-delete")!.GetAttribute("aria-label"), StringComparison.Ordinal);
        using var json = System.Text.Json.JsonDocument.Parse(rows[0].GetAttribute("data-rule")!);
        Assert.Equal("alice", json.RootElement.GetProperty("replace").GetProperty("pattern").GetString());

        // The version the page's edits, deletes and toggles send back as If-Match.
        Assert.Equal(1, json.RootElement.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Onboarding_offers_the_ca_downloads_fingerprint_and_client_setup()
    {
        var doc = await RenderAsync<OnboardingGuide>(new()
        {
            ["ProxyAddress"] = "127.0.0.1:8080",
            ["Subject"] = "CN=WsWeb CA",
            ["Sha256"] = "AB:CD",
            ["NotAfter"] = new DateTime(2036, 1, 1, 0, 0, 0, DateTimeKind.Utc),
        });
        Assert.Equal(["/cert/pem", "/cert/cer", "/cert/p12"], doc.QuerySelectorAll("#ca-downloads a").Select(a => a.GetAttribute("href")));
        Assert.Equal("AB:CD", doc.QuerySelector("#ca-sha256")!.TextContent);
        var titles = doc.QuerySelectorAll("h6").Select(h => h.TextContent).ToList();
        foreach (var client in new[] { "Chrome", "Firefox", "curl", "Node.js", ".NET" })
        {
            Assert.Contains(titles, t => t.Contains(client, StringComparison.Ordinal));
        }

        var snippets = string.Join("\n", doc.QuerySelectorAll("pre.snippet").Select(p => p.TextContent));
        Assert.Contains("--proxy-server=http://127.0.0.1:8080", snippets, StringComparison.Ordinal);
        Assert.Contains("certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\"", snippets, StringComparison.Ordinal);
        // Saved under the name the next lines use (the download's own name), not as "pem" (curl -O takes the URL's).
        Assert.Contains("curl -o wsweb-ca-cert.pem http://", snippets, StringComparison.Ordinal);
        Assert.DoesNotContain("curl -O", snippets, StringComparison.Ordinal);
        Assert.Contains("curl --proxy http://127.0.0.1:8080 --cacert wsweb-ca-cert.pem", snippets, StringComparison.Ordinal);
        Assert.Contains("NODE_EXTRA_CA_CERTS=wsweb-ca-cert.pem", snippets, StringComparison.Ordinal);
        Assert.Contains("new WebProxy(\"http://127.0.0.1:8080\")", snippets, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_page_links_every_format_and_posts_imports()
    {
        var doc = await RenderAsync<ExportPage>(services: s => s.AddSingleton(new FlowStore()).AddSingleton(new WsWeb.Proxy.ProxyOptions()).AddSingleton<WsWeb.Recording.FlowFiles>());
        Assert.Null(doc.QuerySelector("#stream-file"));   // no --save-stream-file
        Assert.Equal(
            ["/api/flows/export?format=json", "/api/flows/export?format=har", "/api/flows/export?format=mitmproxy"],
            doc.QuerySelectorAll("#export-all a").Select(a => a.GetAttribute("href")));
        var filtered = doc.QuerySelector("#export-filtered-form")!;
        Assert.Equal("/api/flows/export", filtered.GetAttribute("action"));
        Assert.NotNull(filtered.QuerySelector("input[name=filter]"));
        Assert.Equal(["json", "har", "mitmproxy"], filtered.QuerySelectorAll("button[name=format]").Select(b => b.GetAttribute("value")));
        Assert.Equal("/api/flows/import", doc.QuerySelector("#import-form")!.GetAttribute("data-api"));
        Assert.NotNull(doc.QuerySelector("#import-form input[type=file]"));
    }
    private static void RulesPageServices(IServiceCollection services)
    {
        services.AddSingleton(new RuleStore());
        services.AddSingleton(new WsWeb.Proxy.ProxyOptions { DataDirectory = "/data/wsweb" });
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<RuleFile>();
    }

    [Fact]
    public async Task The_rules_page_says_where_the_rules_are_kept()
    {
        var doc = await RenderAsync<RulesPage>(services: RulesPageServices);

        Assert.Contains("/data/wsweb/rules.json", doc.QuerySelector("#rules-kept")!.TextContent, StringComparison.Ordinal);
        Assert.Null(doc.QuerySelector("#rules-not-kept"));
    }

    [Fact]
    public async Task Rule_form_fields_carry_the_lengths_the_rules_api_accepts()
    {
        var doc = await RenderAsync<RulesPage>(services: RulesPageServices);
        var form = doc.QuerySelector("#rule-form")!;
        string? MaxLength(string name) => form.QuerySelector($"input[name='{name}']")!.GetAttribute("maxlength");
        Assert.Equal($"{RuleCompiler.MaxNameLength}", MaxLength("name"));

        // The filter's bound lives in WsWeb.Core (not visible here): the longest filter the parser accepts.
        var filter = int.Parse(MaxLength("filter")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(WsWeb.Core.Filters.FlowFilter.TryParse("~b " + new string('a', filter - 3), out _, out _), "a filter of maxlength characters parses");
        Assert.False(WsWeb.Core.Filters.FlowFilter.TryParse("~b " + new string('a', filter - 2), out _, out var tooLong));
        Assert.Contains("too long", tooLong.Message, StringComparison.Ordinal);
        Assert.Equal($"{RuleCompiler.MaxPatternLength}", MaxLength("replace.pattern"));
        Assert.Equal($"{RuleCompiler.MaxReplacementLength}", MaxLength("replace.replacement"));
        Assert.Equal($"{RuleCompiler.MaxDelayMs}", form.QuerySelector("input[name='delayMs']")!.GetAttribute("max"));

        // The shared filter box has no bound of its own where a page gives none.
        var flows = await RenderAsync<FilterBox>();
        Assert.Null(flows.QuerySelector("input[name=filter]")!.GetAttribute("maxlength"));
    }

    [Fact]
    public async Task Message_rows_are_focusable_for_the_keyboard_roving_tab_stop()
    {
        var doc = await RenderRowsAsync<MessageRows>(new() { ["Messages"] = new List<MessageView> { TestData.Text(0, "a"), TestData.Text(1, "b") }, ["FlowStart"] = TestData.Start });

        // -1 on every row: the page script makes one of them the tab stop (0) and moves it with the arrow keys.
        Assert.Equal(["-1", "-1"], doc.QuerySelectorAll("tr.msg-row").Select(r => r.GetAttribute("tabindex")));
    }

    [Fact]
    public void Flow_list_says_when_it_shows_only_the_newest_flows()
    {
        var store = new FlowStore();
        for (var i = 0; i < FlowQueries.FlowListLimit + 2; i++)
        {
            store.Add(new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "cap.example", Port = 80, Path = $"/{i}" }, TestData.Start + i));
        }

        var flows = FlowQueries.List(store, null, out var total, out var error);
        Assert.Null(error);
        Assert.Equal(FlowQueries.FlowListLimit, flows.Count);
        Assert.Equal(FlowQueries.FlowListLimit + 2, total);
        Assert.Equal($"http://cap.example/{FlowQueries.FlowListLimit + 1}", flows[0].Url);

        var filtered = FlowQueries.List(store, "~u /50", out var matching, out _);
        Assert.Equal(["/501", "/500", "/50"], filtered.Select(f => new Uri(f.Url).AbsolutePath));
        Assert.Equal(3, matching);

        Assert.Equal("newest 500 of 502", Fmt.FlowCount(500, 502));
        Assert.Equal("12", Fmt.FlowCount(12, 12));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(1024, "1 KiB")]
    [InlineData(Fmt.MaxViewBytes, "256 KiB")]
    [InlineData(300_000, "293 KiB")]
    [InlineData(1024 * 1024, "1 MiB")]
    [InlineData(1_000_000, "976.6 KiB")]
    [InlineData(64L * 1024 * 1024, "64 MiB")]
    [InlineData(3L * 1024 * 1024 * 1024 / 2, "1.5 GiB")]
    public void Binary_sizes_are_in_KiB_and_MiB(long bytes, string expected) => Assert.Equal(expected, Fmt.BinaryBytes(bytes));

    [Fact]
    public async Task Flows_page_counts_every_matching_flow_when_the_list_is_cut()
    {
        var store = new FlowStore();
        for (var i = 0; i < FlowQueries.FlowListLimit + 1; i++)
        {
            store.Add(new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "cap.example", Port = 80, Path = $"/{i}" }, TestData.Start + i));
        }

        var doc = await RenderAsync<FlowsPage>(services: s => s.AddSingleton(store).AddSingleton<WsWeb.Intercept.HoldResolutions>()
            .AddSingleton(TimeProvider.System).AddSingleton<WsWeb.Intercept.InterceptService>());

        Assert.Equal("newest 500 of 501", doc.QuerySelector("#flow-count")!.TextContent);
        Assert.Equal("501", doc.QuerySelector("#flow-count")!.GetAttribute("data-total"));
        Assert.Equal(500, doc.QuerySelectorAll("#flow-rows tr").Length);
    }

    [Fact]
    public async Task An_empty_filtered_flow_table_says_nothing_matches_not_that_no_traffic_came()
    {
        var doc = await RenderAsync<FlowTable>(new() { ["Flows"] = new List<FlowSummary>(), ["Filtered"] = true });
        var empty = doc.QuerySelector("#flows-empty")!.TextContent.Trim();
        Assert.Equal("No flow matches the filter.", empty);

        var unfiltered = await RenderAsync<FlowTable>(new() { ["Flows"] = new List<FlowSummary>() });
        Assert.StartsWith("No flows yet.", unfiltered.QuerySelector("#flows-empty")!.TextContent.Trim(), StringComparison.Ordinal);

        var invalid = await RenderAsync<FlowTable>(new() { ["Flows"] = new List<FlowSummary>(), ["Filtered"] = true, ["FilterInvalid"] = true });
        Assert.StartsWith("The filter is not valid", invalid.QuerySelector("#flows-empty")!.TextContent.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_http_flows_show_their_body_bytes()
    {
        var http = TestData.Flow("h") with
        {
            IsWebSocket = false,
            IsLive = false,
            MessagesFromClient = 0,
            MessagesFromServer = 0,
            BytesFromClient = 0,
            BytesFromServer = 0,
            Status = 200,
            RequestContentLength = 300,
            ResponseContentLength = 1200,
        };
        var doc = await RenderRowsAsync<FlowRows>(new() { ["Flows"] = new List<FlowSummary> { http, TestData.Flow("w") } });
        var rows = doc.QuerySelectorAll("tr.flow-row");

        Assert.Equal("1.5 kB", rows[0].QuerySelector(".c-bytes")!.TextContent);
        Assert.Equal("request body 300 B · response body 1200 B", rows[0].QuerySelector(".c-bytes")!.GetAttribute("title"));

        // WebSocket flows count message bytes, not the handshake's bodies.
        Assert.Equal("2 kB", rows[1].QuerySelector(".c-bytes")!.TextContent);
        Assert.Equal("1500 B ↑ · 500 B ↓", rows[1].QuerySelector(".c-bytes")!.GetAttribute("title"));
    }

    [Fact]
    public void Flow_summary_carries_the_body_lengths_of_a_plain_http_flow()
    {
        var flow = new HttpFlow(new HttpRequestData { Method = "POST", Scheme = "http", Host = "h.example", Port = 80, Path = "/", ContentLength = 42 }, TestData.Start)
        {
            Response = new HttpResponseData { StatusCode = 200, ContentLength = 4096 },
        };

        var summary = FlowSummary.From(flow);

        Assert.Equal(42, summary.RequestContentLength);
        Assert.Equal(4096, summary.ResponseContentLength);
        var json = System.Text.Json.JsonSerializer.Serialize(summary, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        Assert.Contains("\"requestContentLength\":42", json, StringComparison.Ordinal);
        Assert.Contains("\"bytesFromClient\":0", json, StringComparison.Ordinal); // the old fields stay
    }

    [Fact]
    public async Task Json_larger_than_the_view_cap_is_not_called_not_json()
    {
        var big = "[" + string.Join(",", Enumerable.Range(0, 40_000).Select(i => $$"""{"n":{{i}}}""")) + "]";
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(big) > Fmt.MaxViewBytes);

        var doc = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(1, big), ["View"] = "json" });
        var text = doc.Body!.TextContent;
        Assert.Contains("JSON too large to pretty-print; shown as text", text, StringComparison.Ordinal);
        Assert.DoesNotContain("not JSON", text, StringComparison.Ordinal);
        Assert.StartsWith("[{\"n\":0}", doc.QuerySelector("pre.payload")!.TextContent, StringComparison.Ordinal);

        // Large text that is not JSON (here: JSON cut short) still says so.
        var cut = await RenderAsync<MessageContent>(new() { ["FlowId"] = "f1", ["Message"] = TestData.Text(1, big[..^1]), ["View"] = "json" });
        Assert.Contains("not JSON; shown as text", cut.Body!.TextContent, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(" {\"a\":[1,2]} \n", true)]
    [InlineData("[]", true)]
    [InlineData("{\"a\":1} x", false)]
    [InlineData("{\"a\":", false)]
    [InlineData("42", false)]
    [InlineData("", false)]
    public void Is_json_agrees_with_pretty_json(string text, bool json)
    {
        Assert.Equal(json, Fmt.IsJson(System.Text.Encoding.UTF8.GetBytes(text)));
        Assert.Equal(json, Fmt.PrettyJson(text) is not null);
    }

    [Fact]
    public async Task Certificate_chain_count_is_left_out_when_none_was_recorded()
    {
        var detail = TestData.Detail();
        var client = await RenderAsync<ConnectionDetails>(new() { ["Title"] = "Client", ["Connection"] = detail.ClientConn with { CertificateSubject = "CN=echo.example" } });
        Assert.Contains("CN=echo.example", client.Body!.TextContent, StringComparison.Ordinal);
        Assert.DoesNotContain("chain of", client.Body!.TextContent, StringComparison.Ordinal);

        var server = await RenderAsync<ConnectionDetails>(new() { ["Title"] = "Server", ["Connection"] = detail.ServerConn });
        Assert.Contains("(chain of 2)", server.Body!.TextContent, StringComparison.Ordinal);
    }
}
