using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// A request whose body the client has not (all) sent when the answer comes: <c>Expect: 100-continue</c>, and servers
/// that answer before they read the body. No byte of a body may ever be taken for the next request on the connection.
/// </summary>
public sealed class EarlyAnswerTests
{
    [Fact]
    public async Task Expect100ContinueIsAnsweredByTheProxy_NotForwarded_AndAnEarly417DoesNotDesyncTheConnection()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var authority = $"127.0.0.1:{upstream.Port}";

        // The server refuses at once, without reading the body (curl's 417 case), and reads on until the proxy closes.
        var refusing = upstream.AnswerEarlyAsync(Encoding.ASCII.GetBytes("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"));
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/x HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n"));

        // As curl does: the body goes once 100 Continue comes; a final answer instead means it is never sent.
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 100 Continue\r\n", head, StringComparison.Ordinal);
        await stream.WriteAsync(new byte[2000]);
        head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 417", head, StringComparison.Ordinal);
        Assert.Equal("nope", Encoding.ASCII.GetString(await ProxyClients.ReadBodyAsync(stream, head)));
        var upstreamHead = await refusing;
        Assert.DoesNotContain("Expect", upstreamHead, StringComparison.OrdinalIgnoreCase);

        // The connection goes on with the next request, which reaches the server as a request of its own.
        var answering = upstream.AnswerAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter"));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{authority}/after HTTP/1.1\r\nHost: {authority}\r\n\r\n"));
        head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.StartsWith("GET /after ", await answering, StringComparison.Ordinal);

        // The flow shows the request as the client sent it, Expect included.
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/x" && !f.IsLive);
        Assert.Equal("100-continue", flow.Request.Headers.GetJoined("Expect"));
        Assert.Equal(417, flow.Response!.StatusCode);
        Assert.Equal(2, proxy.Store.Query(f => f.Request.Port == upstream.Port, take: 10).Count);
    }

    [Fact]
    public async Task AnAnswerSentBeforeTheClientsBodyWasReadClosesTheConnection_SoTheRestIsNeverTakenForARequest()
    {
        await using var proxy = await ProxyServer.StartAsync();
        using var upstream = RawHttpUpstream.Start();
        var authority = $"127.0.0.1:{upstream.Port}";

        // The server answers 401 after the first body bytes and hangs up (a reset: their rest is unread).
        var refusing = upstream.AnswerEarlyAsync(Encoding.ASCII.GetBytes("HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\nConnection: close\r\n\r\nauth"), closeAfter: true);
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST http://{authority}/early401 HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 2000\r\n\r\n{new string('a', 100)}"));
        await refusing;

        // A confused client sends its next request where the body's rest belongs: the proxy cannot send it on, and
        // answers 502 before the body it expected was read. Kept open, the connection would read on into whatever
        // comes next as that body; it must be closed after the answer.
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET http://{authority}/after HTTP/1.1\r\nHost: {authority}\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(stream).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        await ProxyClients.ReadBodyAsync(stream, head).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\r\nConnection: close\r\n", head, StringComparison.OrdinalIgnoreCase);

        // As a client told Connection: close does, it stops sending; the proxy reads no request from what it sent.
        tcp.Client.Shutdown(SocketShutdown.Send);
        int read;
        try
        {
            read = await stream.ReadAsync(new byte[1024]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (IOException)
        {
            read = 0;
        }

        Assert.Equal(0, read);
        Assert.Single(proxy.Store.Query(f => f.Request.Port == upstream.Port, take: 10));
    }
}
