using System.Buffers;
using System.Text;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

public sealed class ConnectRequestTests
{
    [Theory]
    [InlineData("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "Connect", "example.com", 443)]
    [InlineData("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", "Connect", "::1", 8443)]
    [InlineData("CONNECT 127.0.0.1:1 HTTP/1.0\r\n\r\n", "Connect", "127.0.0.1", 1)]
    [InlineData("CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n", "Connect", "example.com", 443)]   // typed into netcat
    [InlineData("CONNECT example.com:443 HTTP/1.1\r\nHost: x\n\r\n", "Connect", "example.com", 443)]
    [InlineData("CONNECT example.com:443 HTTP/1.1\nHost: x\n\r", "Incomplete", "", 0)]
    [InlineData("CONNECT example.com:443 HTTP/1.1\r\nHost: exa", "Incomplete", "", 0)]
    [InlineData("CONN", "Incomplete", "", 0)]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "NotConnect", "", 0)]
    [InlineData("CONNECT example.com HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT example.com:0 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT example.com:99999 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT :443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT ::1:443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT [127.0.0.1]:443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT [example.com]:443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT b\u00C3\u00BCcher.de:443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]   // UTF-8 bytes, not punycode
    [InlineData("CONNECT xn--bcher-kva.de:443 HTTP/1.1\r\n\r\n", "Connect", "xn--bcher-kva.de", 443)]
    [InlineData("CONNECT  example.com:443 HTTP/1.1\r\n\r\n", "Invalid", "", 0)]
    [InlineData("CONNECT example.com:443 HTTP/2.0\r\n\r\n", "Invalid", "", 0)]
    public void ParsesTheAuthorityOfACompleteHead(string head, string expected, string host, int port)
    {
        var status = ConnectRequest.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(head)), out var parsedHost, out var parsedPort, out var consumed, out var error);

        Assert.Equal(expected, status.ToString());
        Assert.Equal(host, status.ToString() == "Connect" ? parsedHost : "");
        Assert.Equal(port, status.ToString() == "Connect" ? parsedPort : 0);
        Assert.Equal(expected == "Invalid", error is not null);
        if (expected == "Connect")
        {
            Assert.Equal(head.Length, consumed);
        }
    }

    [Fact]
    public void ACompleteHeadOver16KiBIsRefused()
    {
        var head = "CONNECT example.com:443 HTTP/1.1\r\nX-Pad: " + new string('a', 17 * 1024) + "\r\n\r\n";

        var status = ConnectRequest.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(head)), out _, out _, out _, out var error);

        Assert.Equal("Invalid", status.ToString());
        Assert.Contains("16 KiB", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AConnectTypedWithBareLineFeedsIsEstablished()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();

        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{echo.Port} HTTP/1.1\nHost: 127.0.0.1:{echo.Port}\n\n"));
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CONNECT example.com HTTP/1.1\r\n\r\n", "not host:port")]
    [InlineData("CONNECT a b c d\r\n\r\n", "Malformed CONNECT request line")]
    public async Task AMalformedConnectIsAnswered400SayingWhy(string request, string why)
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, request);

        Assert.StartsWith("HTTP/1.1 400", head, StringComparison.Ordinal);
        Assert.Contains(why, body, StringComparison.Ordinal);
    }
}
