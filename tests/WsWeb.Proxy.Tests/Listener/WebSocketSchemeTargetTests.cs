using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>Absolute-form requests with a WebSocket scheme (<c>GET ws://host/ HTTP/1.1</c>), which Kestrel alone answers with an empty 400.</summary>
public sealed class WebSocketSchemeTargetTests
{
    [Theory]
    [InlineData("GET ws://h/ HTTP/1.1\r\n", "Found", 4, 2)]
    [InlineData("GET wss://h/ HTTP/1.1\r\n", "Found", 4, 3)]
    [InlineData("GET WS://h/ HTTP/1.1\r\n", "Found", 4, 2)]
    [InlineData("OPTIONS Wss://h/ HTTP/1.1\r\n", "Found", 8, 3)]
    [InlineData("GET ws://", "Found", 4, 2)]
    [InlineData("GET ws:/", "Incomplete", 0, 0)]
    [InlineData("GET w", "Incomplete", 0, 0)]
    [InlineData("GE", "Incomplete", 0, 0)]
    [InlineData("", "Incomplete", 0, 0)]
    [InlineData("GET http://h/ HTTP/1.1\r\n", "None", 0, 0)]
    [InlineData("GET / HTTP/1.1\r\n", "None", 0, 0)]
    [InlineData("GET wsx://h/ HTTP/1.1\r\n", "None", 0, 0)]
    [InlineData("GET ws:h HTTP/1.1\r\n", "None", 0, 0)]
    [InlineData(" ws://h/ HTTP/1.1\r\n", "None", 0, 0)]
    [InlineData("\u0016\u0003\u0001 ws://", "None", 0, 0)]
    [InlineData("AVERYLONGMETHODNAMEWITHOUTANYSPACEATALL", "None", 0, 0)]
    public void FindsTheWebSocketSchemeOfAnAbsoluteFormTarget(string head, string expected, int start, int length)
    {
        var status = WebSocketSchemeTarget.Find(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(head)), out var schemeStart, out var schemeLength);

        Assert.Equal(expected, status.ToString());
        Assert.Equal(start, schemeStart);
        Assert.Equal(length, schemeLength);
    }

    [Fact]
    public async Task RewrittenReader_MapsPartialConsumptionBackToTheConnection_ThenStepsAside()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("GET wss://h/p HTTP/1.1\r\n"u8.ToArray());
        var reader = new RequestHeadReader(pipe.Reader);

        // Consume only part of the rewritten prefix, having examined everything: the next read waits for more bytes.
        var read = await reader.ReadAsync();
        Assert.Equal("GET https://h/p HTTP/1.1\r\n", Encoding.ASCII.GetString(read.Buffer));
        reader.AdvanceTo(read.Buffer.GetPosition(4), read.Buffer.End);
        Assert.False(reader.TryRead(out _));

        await pipe.Writer.WriteAsync("Host: h\r\n\r\nbody"u8.ToArray());
        read = await reader.ReadAsync();
        Assert.Equal("https://h/p HTTP/1.1\r\nHost: h\r\n\r\nbody", Encoding.ASCII.GetString(read.Buffer));

        // Consume past the prefix: the connection's own reader is left exactly after the head.
        reader.AdvanceTo(read.Buffer.GetPosition(read.Buffer.Length - 4));
        Assert.True(pipe.Reader.TryRead(out var rest));
        Assert.Equal("body", Encoding.ASCII.GetString(rest.Buffer));
        pipe.Reader.AdvanceTo(rest.Buffer.Start);

        read = await reader.ReadAsync();
        Assert.Equal("body", Encoding.ASCII.GetString(read.Buffer));
        reader.AdvanceTo(read.Buffer.End);
        await reader.CompleteAsync();
        await pipe.Writer.CompleteAsync();
    }

    [Fact]
    public async Task GetWsTarget_SentInSmallPieces_IsUpgradedRelayedAndRecorded()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();

        // Pieces split the method, the scheme and "://", so the listener has to wait for each part of the line.
        var head = Encoding.ASCII.GetBytes(ProxyClients.UpgradeRequest(echo.WsUri().ToString(), $"127.0.0.1:{echo.Port}"));
        foreach (var piece in head.Chunk(3))
        {
            await stream.WriteAsync(piece);
            await stream.FlushAsync();
            await Task.Delay(5);
        }

        var response = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);

        await using var socket = new RawWebSocket(stream, isClient: true);
        await socket.SendTextAsync("over ws://");
        var echoed = await socket.ReadRequiredFrameAsync();
        Assert.Equal(Opcode.Text, echoed.Opcode);
        Assert.Equal("over ws://", echoed.Text);

        // Large payloads bypass the pipes after the upgrade; the rewritten head must not have shifted them.
        var large = RandomNumberGenerator.GetBytes(1024 * 1024);
        await socket.SendAsync(Opcode.Binary, large);
        var echoedLarge = await socket.ReadRequiredFrameAsync();
        Assert.Equal(large, echoedLarge.Payload);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("http", flow.Request.Scheme);
        Assert.Equal("127.0.0.1", flow.Request.Host);
        Assert.Equal(echo.Port, flow.Request.Port);
        Assert.Equal("/echo", flow.Request.Path);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 4, "both messages and their echoes recorded");
        Assert.Equal("over ws://", flow.WebSocket!.Messages[0].Text);
        Assert.True(flow.WebSocket.Messages[0].FromClient);
    }

    [Fact]
    public async Task GetWssTarget_GoesToTheServerOverTls()
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        await using var echo = await EchoServer.StartAsync(upstreamCa.IssueLeaf("localhost"));
        await using var proxy = await ProxyServer.StartAsync();
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();

        await stream.WriteAsync(Encoding.ASCII.GetBytes(ProxyClients.UpgradeRequest(echo.WssUri().ToString(), $"localhost:{echo.Port}")));
        var response = await ProxyClients.ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);

        await using var socket = new RawWebSocket(stream, isClient: true);
        await socket.SendTextAsync("to a tls server");
        Assert.Equal("to a tls server", (await socket.ReadRequiredFrameAsync()).Text);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.Equal("https", flow.Request.Scheme);
        Assert.True(flow.ServerConn.TlsEstablished);
        Assert.False(flow.ClientConn.TlsEstablished);
    }

    [Fact]
    public async Task GetWsTarget_AtTheProxysOwnListener_IsRefused()
    {
        await using var proxy = await ProxyServer.StartAsync();

        var (head, body) = await ProxyClients.SendRawRequestAsync(proxy, ProxyClients.UpgradeRequest($"ws://127.0.0.1:{proxy.WebPort}/healthz", $"127.0.0.1:{proxy.WebPort}"));

        Assert.StartsWith("HTTP/1.1 403", head, StringComparison.Ordinal);
        Assert.Contains("own listener", body, StringComparison.Ordinal);
    }
}
