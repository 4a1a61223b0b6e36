using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Formats;

/// <summary>
/// Flows with every field set the way the proxy would set it, for round trips and interop: a replayed WebSocket,
/// a POST whose response mitmproxy replayed, and a failed request.
/// </summary>
internal static class SampleFlows
{
    public const double T0 = 1_700_000_000.123456;

    /// <summary>Bytes that are not UTF-8 (a lone continuation byte, an overlong sequence, 0xFF).</summary>
    public static readonly byte[] NotUtf8 = [0x00, 0x80, 0xC0, 0xAF, 0xFF, 0xFE, 0x41];

    private static readonly Lazy<byte[]> Certificate = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=echo.example", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.FromUnixTimeSeconds(1_600_000_000), DateTimeOffset.FromUnixTimeSeconds(1_900_000_000));
        return cert.Export(X509ContentType.Cert);
    });

    public static byte[] CertificateDer => Certificate.Value;

    public static HttpFlow WebSocket(bool withCertificate = true)
    {
        var request = new HttpRequestData
        {
            Method = "GET",
            Scheme = "https",
            Host = "echo.example",
            Port = 8443,
            Path = "/chat?room=1&name=caf%C3%A9",
            Headers =
            [
                new("Host", "echo.example:8443"),
                new("Upgrade", "websocket"),
                new("Connection", "Upgrade"),
                new("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                new("Sec-WebSocket-Version", "13"),
                new("Cookie", "a=1; b=two"),
                new("X-Unicode", "héllo"),
            ],
            Content = [],
            TimestampStart = T0,
            TimestampEnd = T0 + 0.001,
        };
        var flow = new HttpFlow(request, T0 - 0.5)
        {
            Id = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            ClientConn = new ConnectionInfo
            {
                Id = "c11e0000-0000-4000-8000-000000000001",
                PeerName = "127.0.0.1:51234",
                SockName = "127.0.0.1:8080",
                TlsEstablished = true,
                Sni = "echo.example",
                TlsVersion = "TLSv1.3",
                Cipher = "TLS_AES_128_GCM_SHA256",
                Alpn = "http/1.1",
                CertificateSubject = "CN=echo.example",
                TimestampStart = T0 - 0.6,
                TimestampTlsSetup = T0 - 0.55,
                TimestampEnd = T0 + 10,
            },
            ServerConn = new ConnectionInfo
            {
                Id = "5e7e0000-0000-4000-8000-000000000002",
                PeerName = "[::1]:8443",
                SockName = "[::1]:40000",
                Address = "echo.example:8443",
                TlsEstablished = true,
                Sni = "echo.example",
                TlsVersion = "TLSv1.3",
                Cipher = "TLS_AES_256_GCM_SHA384",
                Alpn = "http/1.1",
                CertificateSubject = withCertificate ? "CN=echo.example" : null,
                CertificateChain = withCertificate ? [CertificateDer] : [],
                TimestampStart = T0 - 0.4,
                TimestampTcpSetup = T0 - 0.3,
                TimestampTlsSetup = T0 - 0.2,
                TimestampEnd = T0 + 10.5,
            },
            IsLive = true,
            Marked = ":star:",
            IsReplay = "request",
            ReplayOf = "0b1c2d3e-4f50-6172-8394-000000000001",
        };
        flow.Response = new HttpResponseData
        {
            StatusCode = 101,
            Reason = "Switching Protocols",
            Headers = [new("Upgrade", "websocket"), new("Connection", "Upgrade"), new("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")],
            Content = [],
            TimestampStart = T0 + 0.01,
            TimestampEnd = T0 + 0.011,
        };

        var ws = new WebSocketData();
        ws.Add(new WebSocketMessage(Opcode.Text, true, Encoding.UTF8.GetBytes("hello ✓ \"quoted\" <b>"), T0 + 1.25));
        ws.Add(new WebSocketMessage(Opcode.Binary, false, NotUtf8, T0 + 1.5));
        ws.Add(new WebSocketMessage(Opcode.Text, false, Encoding.UTF8.GetBytes("dropped"), T0 + 2, dropped: true));
        ws.Add(new WebSocketMessage(Opcode.Text, true, Encoding.UTF8.GetBytes("injected"), T0 + 3, injected: true));
        var edited = new WebSocketMessage(Opcode.Text, true, Encoding.UTF8.GetBytes("before edit"), T0 + 4);
        edited.Text = "after edit";
        ws.Add(edited);
        ws.Add(new WebSocketMessage(Opcode.Binary, true, [], T0 + 5));
        ws.Add(new WebSocketMessage(Opcode.Binary, true, Encoding.UTF8.GetBytes("binary but utf8"), 1e-5));
        ws.SetControlCounts(3, 1, 1, 3);
        ws.TryClose(closedByClient: true, 4001, "bye", T0 + 6.75);
        flow.WebSocket = ws;
        flow.IsLive = false;
        return flow;
    }

    public static HttpFlow Post() => new(
        new HttpRequestData
        {
            Method = "POST",
            Scheme = "http",
            Host = "api.example",
            Port = 80,
            Path = "/upload?x=1",
            Headers = [new("Host", "api.example"), new("Content-Type", "application/octet-stream")],
            Content = NotUtf8,
            ContentLength = 1000,
            ContentTruncated = true,
            TimestampStart = T0 + 20,
            TimestampEnd = T0 + 20.25,
        },
        T0 + 20)
    {
        Id = "11111111-2222-4333-8444-555555555555",

        // mitmproxy's server replay, which WsWeb does not do but keeps from an imported file.
        IsReplay = "response",
        Response = new HttpResponseData
        {
            StatusCode = 200,
            Reason = "OK",
            HttpVersion = "HTTP/1.1",
            Headers = [new("Content-Type", "application/json"), new("Set-Cookie", "s=1; Path=/")],
            Content = Encoding.UTF8.GetBytes("{\"ok\":true,\"text\":\"żółw\"}"),
            ContentLength = 26,
            TimestampStart = T0 + 20.5,
            TimestampEnd = T0 + 20.75,
        },
        ClientConn = new ConnectionInfo { Id = "c2", PeerName = "10.0.0.5:40001", SockName = "10.0.0.1:8080", TimestampStart = T0 + 19.9 },
        ServerConn = new ConnectionInfo { Id = "s2", PeerName = "93.184.216.34:80", Address = "api.example:80", TimestampStart = T0 + 19.95, TimestampTcpSetup = T0 + 19.96 },
    };

    public static HttpFlow Failed()
    {
        var flow = new HttpFlow(
            new HttpRequestData { Method = "GET", Scheme = "http", Host = "down.example", Port = 81, Path = "/", TimestampStart = T0 + 30 },
            T0 + 30)
        {
            Id = "deadbeef-0000-4000-8000-000000000000",
            ClientConn = new ConnectionInfo { Id = "c3", PeerName = "127.0.0.1:5000", SockName = "127.0.0.1:8080" },
            ServerConn = new ConnectionInfo { Id = "s3", Address = "down.example:81", Error = "Connection refused" },
        };
        flow.Error = "Connection refused";
        return flow;
    }

    public static List<HttpFlow> All() => [WebSocket(), Post(), Failed()];
}
