using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>Ways a real client reaches a WebSocket server through the proxy.</summary>
internal static class ProxyClients
{
    /// <summary>.NET's ClientWebSocket configured with the proxy: ws:// goes absolute-form, wss:// through CONNECT.</summary>
    public static async Task<ClientWebSocket> ConnectWithClientWebSocketAsync(ProxyServer proxy, Uri target, params string[] subProtocols)
    {
        var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.KeepAliveInterval = TimeSpan.Zero;
        client.Options.RemoteCertificateValidationCallback = (_, certificate, _, _) => ChainsTo(certificate, proxy.CaCertificate);
        foreach (var subProtocol in subProtocols)
        {
            client.Options.AddSubProtocol(subProtocol);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(target, timeout.Token);
        return client;
    }

    /// <summary>Opens a CONNECT tunnel (and TLS inside it for wss), returning the stream the WebSocket will run on.</summary>
    public static async Task<Stream> OpenTunnelAsync(ProxyServer proxy, Uri target)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        Stream stream = tcp.GetStream();
        var authority = $"{target.Host}:{target.Port}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"));
        var head = await ReadHeadAsync(stream);
        if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("CONNECT failed: " + head);
        }

        if (target.Scheme == "wss")
        {
            var tls = new SslStream(stream, leaveInnerStreamOpen: false, (_, certificate, _, _) => ChainsTo(certificate, proxy.CaCertificate));
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = target.Host });
            stream = tls;
        }

        return stream;
    }

    /// <summary>Sends the opening handshake on <paramref name="stream"/> and returns the response head.</summary>
    public static async Task<string> HandshakeAsync(Stream stream, Uri target, string? extraHeaders = null)
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {target.PathAndQuery} HTTP/1.1\r\nHost: {target.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extraHeaders}\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        return await ReadHeadAsync(stream);
    }

    /// <summary>CONNECT (+TLS) + handshake + .NET's WebSocket over the tunnel.</summary>
    public static async Task<WebSocket> ConnectThroughTunnelAsync(ProxyServer proxy, Uri target)
    {
        var stream = await OpenTunnelAsync(proxy, target);
        var head = await HandshakeAsync(stream, target);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("Upgrade failed: " + head);
        }

        return WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
    }

    /// <summary>Reads an HTTP head byte by byte, so nothing after it is consumed.</summary>
    public static async Task<string> ReadHeadAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 65536)
        {
            if (await stream.ReadAsync(one) == 0)
            {
                break;
            }

            bytes.Add(one[0]);
            if (bytes.Count >= 4 && bytes[^1] == '\n' && bytes[^2] == '\r' && bytes[^3] == '\n' && bytes[^4] == '\r')
            {
                break;
            }
        }

        return Encoding.Latin1.GetString(bytes.ToArray());
    }

    public static bool ChainsTo(X509Certificate? certificate, X509Certificate2 root)
    {
        if (certificate is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    public static async Task<(WebSocketMessageType Type, byte[] Data, WebSocketReceiveResult Last)> ReceiveMessageAsync(WebSocket socket, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close)
            {
                return (result.MessageType, message.ToArray(), result);
            }
        }
    }
}
