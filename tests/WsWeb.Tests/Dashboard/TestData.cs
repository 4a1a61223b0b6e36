using System.Text;
using WsWeb.Api;

namespace WsWeb.Tests.Dashboard;

internal static class TestData
{
    public const double Start = 1_700_000_000.0;

    public static FlowSummary Flow(string id = "f1", bool live = true, int? closeCode = null, string url = "ws://echo.example/socket?room=1") =>
        new(id, "GET", url, 101, IsWebSocket: true, IsLive: live, MessagesFromClient: 3, MessagesFromServer: 4, BytesFromClient: 1500, BytesFromServer: 500,
            CloseCode: closeCode, CloseReason: closeCode is null ? null : "bye", ClosedByClient: closeCode is null ? null : true,
            TimestampCreated: Start, TimestampEnd: live ? null : Start + 5, Error: null)
        {
            Client = "127.0.0.1:50123",
            Subprotocol = "chat.v2",
        };

    public static MessageView Text(long index, string text, bool fromClient = true, bool dropped = false, bool injected = false, string? original = null, string? resolution = null) =>
        new(index, fromClient, "text", Encoding.UTF8.GetByteCount(text), Start + 1.5 + index, dropped, injected, original is not null,
            "utf8", text, original is null ? null : "utf8", original, resolution);

    public static MessageView Binary(long index, byte[] content, bool fromClient = false) =>
        new(index, fromClient, "binary", content.Length, Start + 2, false, false, false, "base64", Convert.ToBase64String(content), null, null, null);

    public static FlowDetail Detail(bool live = true) => new(
        Flow(live: live, closeCode: live ? null : 4000),
        new RequestView("GET", "http", "echo.example", 80, "/socket?room=1", "HTTP/1.1", "http://echo.example/socket?room=1",
            [new("Host", "echo.example"), new("Upgrade", "websocket"), new("Sec-WebSocket-Protocol", "chat.v2")], 0, Start, Start),
        new ResponseView(101, "Switching Protocols", "HTTP/1.1", [new("Upgrade", "websocket"), new("Sec-WebSocket-Protocol", "chat.v2")], 0, Start + 0.01, Start + 0.01),
        new ConnectionView("127.0.0.1:50123", "127.0.0.1:8080", null, true, "echo.example", "Tls13", "TLS_AES_256_GCM_SHA384", "http/1.1", null, 0, Start, Start, Start + 0.002, null, null),
        new ConnectionView("93.184.216.34:443", null, "echo.example:443", true, "echo.example", "Tls13", "TLS_AES_128_GCM_SHA256", null, "CN=echo.example", 2, Start, Start, Start + 0.02, null, null),
        new WebSocketView(live ? null : true, false, live ? null : 4000, live ? null : "bye", live ? null : Start + 5, 2, 1, 1, 2, 7, 0),
        null);
}
