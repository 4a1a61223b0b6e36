using System.Net;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class DeflateRelayTests
{
    [Fact]
    public async Task PermessageDeflateRunsOnBothLegsAndHooksSeeDecompressedContent()
    {
        await using var echo = await EchoServer.StartAsync(enableCompression: true);
        await using var proxy = await ProxyServer.StartAsync();
        using var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        client.Options.CollectHttpResponseDetails = true;
        await client.ConnectAsync(echo.WsUri(), CancellationToken.None);

        var text = string.Concat(Enumerable.Repeat("compress me please, ", 200));
        for (var i = 0; i < 3; i++)
        {
            // Several messages: context takeover must keep both legs' dictionaries in step.
            await client.SendAsync(Encoding.UTF8.GetBytes(text + i), WebSocketMessageType.Text, true, CancellationToken.None);
            var echoed = await ProxyClients.ReceiveMessageAsync(client);
            Assert.Equal(text + i, Encoding.UTF8.GetString(echoed.Data));
        }

        Assert.Contains("permessage-deflate", client.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single(), StringComparison.Ordinal);
        Assert.True(echo.ExtensionsOffered.TryPeek(out var offered));
        Assert.Contains("permessage-deflate", offered, StringComparison.Ordinal);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 6, "six recorded messages");
        Assert.All(flow.WebSocket!.Messages, m => Assert.StartsWith("compress me please", m.Text, StringComparison.Ordinal));
    }

    [Fact]
    public async Task IncompressibleMessageAtTheLimitPasses_ThoughItsCompressedPayloadIsLarger()
    {
        const int limit = 64 * 1024;
        await using var echo = await EchoServer.StartAsync(enableCompression: true);
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxMessageSize = limit });
        using var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        await client.ConnectAsync(echo.WsUri(), CancellationToken.None);

        // Random bytes do not compress: deflate wraps them in stored blocks, a few bytes over the limit.
        var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(limit);
        await client.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal(WebSocketMessageType.Binary, echoed.Type);
        Assert.Equal(payload, echoed.Data);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 2, "the message and its echo recorded");
        Assert.All(flow.WebSocket!.Messages, m => Assert.Equal(limit, m.Content.Length));
        Assert.Null(flow.WebSocket.CloseCode);
    }

    [Theory]
    [InlineData("ping")]
    [InlineData("continuation")]
    public async Task Rsv1WhereDeflateNeverSetsItIsA1002NamingTheFrame(string frame)
    {
        await using var echo = await EchoServer.StartAsync(enableCompression: true);
        await using var proxy = await ProxyServer.StartAsync();
        await using var client = await ProxyClients.ConnectRawAsync(proxy, echo.WsUri(), "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);

        if (frame == "ping")
        {
            await client.SendAsync(Opcode.Ping, "x"u8, extraBits: 0x40);
        }
        else
        {
            // A compressed message may start with RSV1; its continuation must not repeat it (RFC 7692 §6).
            await client.SendAsync(Opcode.Text, "x"u8, fin: false, extraBits: 0x40);
            await client.SendAsync(Opcode.Continuation, "y"u8, extraBits: 0x40);
        }

        var close = await client.ReadRequiredFrameAsync();

        Assert.Equal((Opcode.Close, 1002), (close.Opcode, close.CloseCode));
        Assert.Equal($"RSV1 is set on a {frame} frame: permessage-deflate sets it on a message's first frame only (RFC 7692 §6).", close.CloseReason);
        await Eventually.AssertAsync(() => flow.Error is not null, "the error recorded");
        Assert.Contains(close.CloseReason, flow.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownExtensionsAreNotOfferedUpstream()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        await using var stream = await ProxyClients.OpenTunnelAsync(proxy, echo.WsUri());

        var head = await ProxyClients.HandshakeAsync(stream, echo.WsUri(), "Sec-WebSocket-Extensions: x-webkit-deflate-frame, x-custom; a=1\r\n");

        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.DoesNotContain("Sec-WebSocket-Extensions", head, StringComparison.OrdinalIgnoreCase);
        Assert.True(echo.ExtensionsOffered.TryPeek(out var offered));
        Assert.Equal("", offered);
    }
}
