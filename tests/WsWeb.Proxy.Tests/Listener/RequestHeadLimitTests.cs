using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>Large request heads: forwarded by the proxy listener, as mitmproxy does; the web listener keeps Kestrel's default limits.</summary>
public sealed class RequestHeadLimitTests
{
    public static TheoryData<string, string> LargeHeads => new()
    {
        { "101 header fields", "" },
        { "a 40 KB Cookie", "" },
        { "a 9 KB request line", "" },
        { "a 9 KB ws:// request line", "ws" },
    };

    private static (string Path, string Headers) Large(string what) => what switch
    {
        "101 header fields" => ("/many", string.Concat(Enumerable.Range(0, 101).Select(i => $"X-H{i}: {i}\r\n"))),
        "a 40 KB Cookie" => ("/cookie", $"Cookie: c={new string('c', 40 * 1024)}\r\n"),
        _ => ("/long?q=" + new string('q', 9 * 1024), ""),
    };

    [Theory]
    [MemberData(nameof(LargeHeads))]
    public async Task TheProxyForwardsALargeRequestHead(string what, string scheme)
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        var authority = $"127.0.0.1:{upstream.Port}";
        var (path, headers) = Large(what);

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, $"GET {(scheme == "" ? "http" : scheme)}://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\n{headers}\r\n");
        var received = await answering;

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("ok", body);
        Assert.StartsWith($"GET {path} HTTP/1.1\r\n", received, StringComparison.Ordinal);
        Assert.Contains(headers, received, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("101 header fields", "431", "headers")]
    [InlineData("a 40 KB Cookie", "431", "headers")]
    public async Task TheWebListenerKeepsKestrelsDefaultHeaderLimits_WithAProblemNamingTheHeaders(string what, string status, string field)
    {
        await using var proxy = await ProxyServer.StartAsync();
        var (_, headers) = Large(what);

        Assert.StartsWith("HTTP/1.1 200", (await WebRequestAsync(proxy, "/healthz", "")).Head, StringComparison.Ordinal);
        var (head, body) = await WebRequestAsync(proxy, "/healthz", headers);
        Assert.StartsWith($"HTTP/1.1 {status}", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: application/problem+json", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"\"errors\":{{\"{field}\":", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheWebListenerTakesTheLongestFilterInAQuery_AndAnswersALongerLineWithAProblemNamingTheUrl()
    {
        await using var proxy = await ProxyServer.StartAsync();

        // The longest filter (4096 characters), of three-byte characters, percent-encoded: 36 KiB, past Kestrel's default 8 KiB.
        var filter = Uri.EscapeDataString("~b " + new string('語', 4093));
        Assert.True(filter.Length > 36_000, $"{filter.Length}");
        Assert.StartsWith("HTTP/1.1 200", (await WebRequestAsync(proxy, "/healthz?filter=" + filter, "")).Head, StringComparison.Ordinal);

        var (head, body) = await WebRequestAsync(proxy, "/healthz?q=" + new string('q', 57 * 1024), "");
        Assert.StartsWith("HTTP/1.1 414", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: application/problem+json", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"errors\":{\"url\":[\"The request line is longer than 57344 bytes.\"]}", body, StringComparison.Ordinal);
    }

    /// <summary>A raw request to the web listener: its response head, and the body up to the connection's close.</summary>
    private static async Task<(string Head, string Body)> WebRequestAsync(ProxyServer proxy, string path, string headers)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.WebPort, cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{proxy.WebPort}\r\nConnection: close\r\n{headers}\r\n"), cts.Token);
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(cts.Token);
        using var rest = new StreamReader(stream);
        return (head, await rest.ReadToEndAsync(cts.Token));
    }
}
