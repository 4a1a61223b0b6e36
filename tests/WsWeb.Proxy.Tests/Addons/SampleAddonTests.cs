using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Core.Addons.Samples;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Addons;

/// <summary>The seed's six usage examples, each proven through a real proxied connection.</summary>
public sealed class SampleAddonTests
{
    private readonly ConcurrentQueue<string> _printed = new();

    private Task<ProxyServer> StartProxyAsync<TAddon>()
        where TAddon : class, WsWeb.Core.Addons.IWebSocketAddon =>
        ProxyServer.StartAsync(services: services =>
        {
            services.AddSingleton(new AddonOutput(_printed.Enqueue));
            services.AddWebSocketAddon<TAddon>();
        });

    [Fact]
    public async Task ProcessMessagesPrintsEachDirection()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<ProcessMessagesAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync("hi\n"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await ProxyClients.ReceiveMessageAsync(client);

        await Eventually.AssertAsync(() => _printed.Count == 2, "two printed lines");
        Assert.Equal(["Client: b'hi\\n'", "Server: b'hi\\n'"], _printed);
    }

    [Fact]
    public async Task RedactSecretsRewritesTextOnTheWire()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<RedactSecretsAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync("my secret is secret"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("my REDACTED is REDACTED", Encoding.UTF8.GetString(echoed.Data));
        Assert.True(echo.Frames.TryPeek(out var atServer));
        Assert.Equal("my REDACTED is REDACTED", Encoding.UTF8.GetString(atServer.Data));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        var first = flow.WebSocket!.Messages[0];
        Assert.True(first.IsModified);
        Assert.Equal("my secret is secret", Encoding.UTF8.GetString(first.OriginalContent!));
    }

    [Fact]
    public async Task DropPasswordsKeepsTheMessageButDoesNotForwardIt()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<DropPasswordsAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync("password=hunter2"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await client.SendAsync("harmless"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var echoed = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal("harmless", Encoding.UTF8.GetString(echoed.Data));
        Assert.Single(echo.Frames);
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.True(flow.WebSocket!.Messages[0].Dropped);
        Assert.Equal("password=hunter2", flow.WebSocket.Messages[0].Text);
    }

    [Fact]
    public async Task PingResponderInjectsAPongToTheClient()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<PingResponderAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync("ping"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var first = await ProxyClients.ReceiveMessageAsync(client);
        var second = await ProxyClients.ReceiveMessageAsync(client);

        var received = new[] { Encoding.UTF8.GetString(first.Data), Encoding.UTF8.GetString(second.Data) };
        Assert.Contains("""{"type": "pong"}""", received);
        Assert.Contains("ping", received);
        // The echoed "ping" from the server gets its own pong toward the server; the client's is what we check.
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Any(m => m.Injected && !m.FromClient), "a pong injected toward the client");
        Assert.Equal("""{"type": "pong"}""", flow.WebSocket!.Messages.First(m => m.Injected && !m.FromClient).Text);
    }

    [Fact]
    public async Task ConnectionStateReportsTheClose()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<ConnectionStateAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.CloseAsync((WebSocketCloseStatus)4001, "bye", CancellationToken.None);

        await Eventually.AssertAsync(() => _printed.Count == 3, "three printed lines");
        Assert.Equal(["Client closed the connection", "Close code: 4001", "Close reason: bye"], _printed);
    }

    [Fact]
    public async Task BinaryProtocolReadsTheMessageType()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await StartProxyAsync<BinaryProtocolAddon>();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());

        await client.SendAsync(new byte[] { 0, 0, 1, 2, 0xAA }, WebSocketMessageType.Binary, true, CancellationToken.None);
        await ProxyClients.ReceiveMessageAsync(client);

        await Eventually.AssertAsync(() => _printed.Count == 2, "two printed lines");
        Assert.All(_printed, line => Assert.Equal("Binary message type: 258", line));
    }
}
