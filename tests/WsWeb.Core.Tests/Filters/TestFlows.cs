using System.Text;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Filters;

/// <summary>The flows every filter test runs against, built fresh per test.</summary>
internal static class TestFlows
{
    /// <summary>GET https://example.com/api/Users?id=7 → 200 text/html, with a form-ish request body.</summary>
    public static HttpFlow Http()
    {
        var request = new HttpRequestData
        {
            Method = "GET",
            Scheme = "https",
            Host = "example.com",
            Port = 443,
            Path = "/api/Users?id=7",
            Headers =
            [
                new("Host", "example.com"),
                new("User-Agent", "Mozilla/5.0"),
                new("Content-Type", "application/json"),
                new("X-Note", "two words"),
            ],
            Content = Encoding.UTF8.GetBytes("name=Alice; say \"hi\"; it's"),
        };
        var flow = new HttpFlow(request, 1_700_000_000)
        {
            ClientConn = new ConnectionInfo { PeerName = "127.0.0.1:51000" },
            ServerConn = new ConnectionInfo { Address = "example.com:443" },
        };
        flow.Response = new HttpResponseData
        {
            StatusCode = 200,
            Headers = [new("Content-Type", "text/html; charset=utf-8"), new("Server", "nginx")],
            Content = Encoding.UTF8.GetBytes("<html>Hello World\nsecond line</html>"),
        };
        return flow;
    }

    /// <summary>A POST to http://api.local:8080/upload still waiting for its response.</summary>
    public static HttpFlow Pending()
    {
        var request = new HttpRequestData
        {
            Method = "POST",
            Scheme = "http",
            Host = "api.local",
            Port = 8080,
            Path = "/upload",
            Headers = [new("Host", "api.local:8080"), new("Content-Type", "image/png")],
            Content = [0x89, 0x50, 0x4E, 0x47],
        };
        return new HttpFlow(request, 1_700_000_001) { Error = "connection reset", Marked = ":star:" };
    }

    /// <summary>
    /// wss://chat.example.org/socket with six messages:
    /// 0 client text ping, 1 server JSON pong, 2 server binary, 3 injected client text,
    /// 4 dropped client text, 5 edited server text.
    /// </summary>
    public static HttpFlow WebSocket()
    {
        var request = new HttpRequestData
        {
            Method = "GET",
            Scheme = "https",
            Host = "chat.example.org",
            Port = 443,
            Path = "/socket",
            Headers = [new("Host", "chat.example.org"), new("Upgrade", "websocket"), new("Connection", "Upgrade")],
        };
        var flow = new HttpFlow(request, 1_700_000_002)
        {
            Response = new HttpResponseData
            {
                StatusCode = 101,
                Headers = [new("Upgrade", "websocket"), new("Connection", "Upgrade")],
                Content = Encoding.UTF8.GetBytes("handshake-body"),
            },
            WebSocket = new WebSocketData(),
        };
        flow.WebSocket.Add(Text("{\"type\":\"ping\",\"id\":1}", fromClient: true));
        flow.WebSocket.Add(Text(
            "{\"type\":\"pong\",\"id\":1.0,\"ok\":true,\"none\":null,\"user\":{\"id\":42,\"name\":\"Bob\"}," +
            "\"items\":[{\"name\":\"apple\"},{\"name\":\"Banana\"}],\"odd key\":\"v\",\"esc\":\"a\\u00e9\\\"b\"}",
            fromClient: false));
        flow.WebSocket.Add(new WebSocketMessage(Opcode.Binary, false, [0x00, 0xFF, 0x10, 0x41], 1));
        flow.WebSocket.Add(new WebSocketMessage(Opcode.Text, true, "hello"u8.ToArray(), 2, injected: true));
        flow.WebSocket.Add(new WebSocketMessage(Opcode.Text, true, "secret-token"u8.ToArray(), 3, dropped: true));
        var edited = Text("original", fromClient: false);
        edited.Text = "edited";
        flow.WebSocket.Add(edited);
        return flow;
    }

    public static WebSocketMessage Text(string text, bool fromClient) =>
        new(Opcode.Text, fromClient, Encoding.UTF8.GetBytes(text), 0);

    public static WebSocketMessage Message(HttpFlow flow, int index) => flow.WebSocket!.Messages[index];
}
