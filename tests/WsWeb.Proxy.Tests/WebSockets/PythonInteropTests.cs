using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.WebSockets;

/// <summary>A non-.NET peer on either side of the proxy: Debian's python3-websockets (10.x).</summary>
public sealed class PythonInteropTests
{
    private const string EchoServerScript = """
        import asyncio
        import websockets

        async def handler(ws, path=None):
            async for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    _, code, reason = message.split(":", 2)
                    await ws.close(int(code), reason)
                    return
                await ws.send(message)

        async def main():
            async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
                print(server.sockets[0].getsockname()[1], flush=True)
                await asyncio.Future()

        asyncio.run(main())
        """;

    private const string ClientScript = """
        import asyncio
        import json
        import socket
        import sys
        import websockets

        async def main(proxy_port, target_host, target_port):
            sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
            authority = f"{target_host}:{target_port}"
            sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(1)
                if not chunk:
                    raise SystemExit("the proxy closed the CONNECT")
                head += chunk
            sock.settimeout(None)
            result = {"connect": head.split(b"\r\n")[0].decode()}
            async with websockets.connect(f"ws://{authority}/echo", sock=sock, ping_interval=None, open_timeout=10) as ws:
                await ws.send("hello from python")
                result["text"] = await asyncio.wait_for(ws.recv(), 10)
                await ws.send(bytes([0, 1, 2, 255]))
                echoed = await asyncio.wait_for(ws.recv(), 10)
                result["binary"] = list(echoed)
                result["binary_is_bytes"] = isinstance(echoed, bytes)
                waiter = await ws.ping(b"py-ping")
                await asyncio.wait_for(waiter, 10)
                result["pong"] = True
                await ws.close(4001, "bye")
                result["close_code"] = ws.close_code
                result["close_reason"] = ws.close_reason
            print(json.dumps(result), flush=True)

        asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
        """;

    [RequiresToolFact(ExternalTools.PythonWebsockets)]
    public async Task DotNetClientThroughTheProxyToPythonServer()
    {
        await using var python = PythonProcess.Start(EchoServerScript);
        var port = int.Parse(await python.ReadLineAsync(TimeSpan.FromSeconds(15)), System.Globalization.CultureInfo.InvariantCulture);
        await using var proxy = await ProxyServer.StartAsync();
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, new Uri($"ws://127.0.0.1:{port}/py"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await client.SendAsync(Encoding.UTF8.GetBytes("hello python"), WebSocketMessageType.Text, true, cts.Token);
        var text = await ProxyClients.ReceiveMessageAsync(client);
        await client.SendAsync(new byte[] { 9, 8, 7, 0, 255 }, WebSocketMessageType.Binary, true, cts.Token);
        var binary = await ProxyClients.ReceiveMessageAsync(client);
        await client.SendAsync(Encoding.UTF8.GetBytes("close:4001:bye"), WebSocketMessageType.Text, true, cts.Token);
        var close = await ProxyClients.ReceiveMessageAsync(client);

        Assert.Equal((WebSocketMessageType.Text, "hello python"), (text.Type, Encoding.UTF8.GetString(text.Data)));
        Assert.Equal(WebSocketMessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 9, 8, 7, 0, 255 }, binary.Data);
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal((WebSocketCloseStatus)4001, client.CloseStatus);
        Assert.Equal("bye", client.CloseStatusDescription);
        await client.CloseOutputAsync((WebSocketCloseStatus)4001, "bye", cts.Token);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        var ws = flow.WebSocket!;
        Assert.Equal("/py", flow.Request.Path);
        Assert.Equal(5, ws.Messages.Count);
        Assert.Equal(["hello python", "hello python"], ws.Messages.Take(2).Select(m => m.Text));
        Assert.Equal(Opcode.Binary, ws.Messages[3].Type);
        Assert.Equal(new byte[] { 9, 8, 7, 0, 255 }, ws.Messages[3].Content);
        Assert.Equal("close:4001:bye", ws.Messages[4].Text);
        Assert.False(ws.ClosedByClient);
        Assert.Equal(4001, ws.CloseCode);
        Assert.Equal("bye", ws.CloseReason);
    }

    [RequiresToolFact(ExternalTools.PythonWebsockets)]
    public async Task PythonClientThroughConnectToDotNetServerWithPingAndClose()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = await ProxyServer.StartAsync();
        await using var python = PythonProcess.Start(
            ClientScript,
            proxy.ProxyPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "127.0.0.1",
            echo.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        var (exitCode, output) = await python.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.True(exitCode == 0, $"python failed ({exitCode}): {python.StandardError}");
        using var json = JsonDocument.Parse(output);
        var result = json.RootElement;
        Assert.StartsWith("HTTP/1.1 200", result.GetProperty("connect").GetString(), StringComparison.Ordinal);
        Assert.Equal("hello from python", result.GetProperty("text").GetString());
        Assert.Equal([0, 1, 2, 255], result.GetProperty("binary").EnumerateArray().Select(e => e.GetInt32()));
        Assert.True(result.GetProperty("binary_is_bytes").GetBoolean());
        Assert.True(result.GetProperty("pong").GetBoolean());
        Assert.Equal(4001, result.GetProperty("close_code").GetInt32());
        Assert.Equal("bye", result.GetProperty("close_reason").GetString());

        Assert.True(echo.ClosesReceived.TryPeek(out var serverSaw));
        Assert.Equal(((WebSocketCloseStatus?)4001, "bye"), (serverSaw.Status, serverSaw.Reason));
        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        await Eventually.AssertAsync(() => !flow.IsLive, "flow ended");
        var ws = flow.WebSocket!;
        Assert.Equal(4, ws.Messages.Count);
        Assert.Equal("hello from python", ws.Messages[0].Text);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, ws.Messages[2].Content);
        Assert.Equal([true, false, true, false], ws.Messages.Select(m => m.FromClient));
        Assert.Equal((1L, 1L), (ws.ClientPings, ws.ServerPongs));
        Assert.True(ws.ClosedByClient);
        Assert.Equal(4001, ws.CloseCode);
        Assert.Equal("bye", ws.CloseReason);
    }
}
