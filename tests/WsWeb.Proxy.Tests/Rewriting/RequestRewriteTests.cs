using System.Net.WebSockets;
using System.Text;
using WsWeb.Proxy.Rewriting;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Rewriting;

/// <summary>
/// mitmproxy's --map-remote, --modify-headers and --block-list on real WebSocket handshakes and HTTP requests through
/// the proxy: what the server gets, what the client gets, and what the flow records.
/// </summary>
public sealed class RequestRewriteTests
{
    [Fact]
    public async Task Map_remote_sends_a_wss_handshake_for_a_production_host_to_a_local_ws_server()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MapRemote = [$"|https://chat\\.example\\.com/|http://127.0.0.1:{echo.Port}/"] });

        // TLS with the client under WsWeb's certificate for chat.example.com; plain ws:// to the local server.
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, new Uri("wss://chat.example.com/echo?room=1"));
        await client.SendAsync("to the local server"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var (_, echoed, _) = await ProxyClients.ReceiveMessageAsync(client);
        Assert.Equal("to the local server", Encoding.UTF8.GetString(echoed));

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal($"http://127.0.0.1:{echo.Port}/echo?room=1", flow.Request.Url);
        Assert.Equal($"127.0.0.1:{echo.Port}", flow.Request.Headers["Host"]);
        Assert.Equal($"127.0.0.1:{echo.Port}", flow.ServerConn.Address);
    }

    [Fact]
    public async Task Map_remote_leaves_requests_its_filter_does_not_match_alone()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MapRemote = [$"|~u /never|127\\.0\\.0\\.1|192.0.2.1"] });

        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri("/echo"));
        await client.SendAsync("untouched"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);

        Assert.Equal("untouched", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));
        Assert.Equal(echo.Port, (await proxy.WaitForFlowAsync(f => f.IsWebSocket)).Request.Port);
    }

    [Fact]
    public async Task Map_remote_sends_the_path_as_written_not_resolved_or_decoded()
    {
        using var upstream = RawHttpUpstream.Start();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MapRemote = [$"|http://mapped\\.test/|http://127.0.0.1:{upstream.Port}/"] });
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, "GET http://mapped.test/a/../b/%2e%2e/c?x=%41 HTTP/1.1\r\nHost: mapped.test\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.StartsWith("GET /a/../b/%2e%2e/c?x=%41 HTTP/1.1\r\n", await answering, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Modify_headers_sets_and_removes_handshake_headers_both_ways_as_recorded()
    {
        using var upstream = RawHttpUpstream.Start();
        await using var proxy = await ProxyServer.StartAsync(o => o with
        {
            ModifyHeaders = ["/~q/Origin/https://allowed.example", "/~q/Cookie/", "|~s|X-Frame-Options|", "/~s & ~c 403/X-Seen-By/WsWeb"],
        });
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 403 Forbidden\r\nX-Frame-Options: DENY\r\nContent-Length: 2\r\n\r\nno"));

        var authority = $"127.0.0.1:{upstream.Port}";
        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"GET http://{authority}/socket HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\nCookie: session=secret\r\n\r\n");
        var received = await answering;

        Assert.Equal("https://allowed.example", RawWebSocketServer.HeaderValue(received, "Origin"));
        Assert.Null(RawWebSocketServer.HeaderValue(received, "Cookie"));
        Assert.StartsWith("HTTP/1.1 403", head, StringComparison.Ordinal);
        Assert.Equal("no", body);
        Assert.Null(RawWebSocketServer.HeaderValue(head, "X-Frame-Options"));
        Assert.Equal("WsWeb", RawWebSocketServer.HeaderValue(head, "X-Seen-By"));

        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/socket" && f.Response is not null && !f.IsLive);
        Assert.Equal("https://allowed.example", flow.Request.Headers["Origin"]);
        Assert.Null(flow.Request.Headers["Cookie"]);
        Assert.Null(flow.Response!.Headers["X-Frame-Options"]);
        Assert.Equal("WsWeb", flow.Response.Headers["X-Seen-By"]);
    }

    [Fact]
    public async Task Modify_headers_leaves_a_101s_negotiated_extensions_alone_so_compressed_frames_still_make_sense()
    {
        await using var echo = await EchoServer.StartAsync(enableCompression: true);
        await using var proxy = await ProxyServer.StartAsync(o => o with { ModifyHeaders = ["/~s/Sec-WebSocket-Extensions/", "/~s/X-Added/yes"] });
        using var client = new ClientWebSocket();
        client.Options.Proxy = new System.Net.WebProxy(proxy.ProxyUri);
        client.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        client.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(echo.WsUri(), timeout.Token);

        Assert.Contains("permessage-deflate", client.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single(), StringComparison.Ordinal);
        Assert.Equal("yes", client.HttpResponseHeaders["X-Added"].Single());
        await client.SendAsync(Encoding.UTF8.GetBytes(new string('z', 2000)), WebSocketMessageType.Text, true, timeout.Token);
        Assert.Equal(new string('z', 2000), Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));
    }

    [Fact]
    public async Task Block_list_answers_a_handshake_with_its_status_and_the_server_never_hears_of_it()
    {
        using var upstream = RawHttpUpstream.Start();
        await using var proxy = await ProxyServer.StartAsync(o => o with { BlockList = ["|~hq \"(?i)^upgrade: websocket\" & ~u /blocked|503"] });
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy,
            $"GET http://{authority}/blocked HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
        Assert.Equal("", body);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/blocked" && !f.IsLive);
        Assert.Equal(503, flow.Response!.StatusCode);
        Assert.Null(flow.Error);
        Assert.False(upstream.HasPendingConnection);
    }

    [Fact]
    public async Task Block_list_444_closes_the_connection_without_an_answer()
    {
        using var upstream = RawHttpUpstream.Start();
        await using var proxy = await ProxyServer.StartAsync(o => o with { BlockList = ["|~u /gone|444"] });
        var authority = $"127.0.0.1:{upstream.Port}";

        var (head, _) = await ProxyClients.SendRawRequestAsync(proxy, $"GET http://{authority}/gone HTTP/1.1\r\nHost: {authority}\r\n\r\n");

        Assert.Equal("", head);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/gone" && !f.IsLive);
        Assert.Null(flow.Response);
        Assert.Contains("444", flow.Error, StringComparison.Ordinal);
        Assert.False(upstream.HasPendingConnection);
    }

    [Fact]
    public async Task A_map_to_something_that_is_not_a_url_is_a_502_saying_which_option_did_it()
    {
        await using var proxy = await ProxyServer.StartAsync(o => o with { MapRemote = ["|^http://|nonsense:"] });

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, "GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains("--map-remote", body, StringComparison.Ordinal);
        Assert.Contains("nonsense:", (await proxy.WaitForFlowAsync(f => f.Request.Path == "/x" && !f.IsLive)).Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("|a", "needs 2 or 3")]
    [InlineData("a|b|c", "separator")]
    [InlineData("|~zz|a|b", "does not parse: unknown operator '~zz' at position 0")]
    [InlineData("|(|b", "is not a regular expression")]
    public void A_bad_map_remote_spec_says_what_is_wrong(string spec, string expected)
    {
        var refused = Assert.Throws<FormatException>(() => RewriteSpec.MapRemote(spec));
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/Bad Name/x", "is not a header name")]
    [InlineData("/X-Token/@token.txt", "from a file")]
    [InlineData("/X-Ctl/a\u0001b", "control characters")]
    public void A_bad_modify_headers_spec_says_what_is_wrong(string spec, string expected)
    {
        var refused = Assert.Throws<FormatException>(() => RewriteSpec.ModifyHeader(spec));
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/~all/199", "is not an HTTP status")]
    [InlineData("/~all/600", "is not an HTTP status")]
    [InlineData("/~all/abc", "is not an HTTP status")]
    [InlineData("/404", "has 1 part after")]
    public void A_bad_block_list_spec_says_what_is_wrong(string spec, string expected)
    {
        var refused = Assert.Throws<FormatException>(() => RewriteSpec.Block(spec));
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }
}
