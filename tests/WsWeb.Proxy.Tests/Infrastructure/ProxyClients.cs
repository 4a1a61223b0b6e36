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

    /// <summary>An opening handshake request head for <paramref name="target"/> (origin- or absolute-form), with RFC 6455's sample key.</summary>
    /// <param name="extraHeaders">More header lines, each ending in CRLF.</param>
    public static string UpgradeRequest(string target, string host, string? extraHeaders = null) =>
        $"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extraHeaders}\r\n";

    /// <summary>Sends the opening handshake on <paramref name="stream"/> and returns the response head.</summary>
    public static async Task<string> HandshakeAsync(Stream stream, Uri target, string? extraHeaders = null)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(UpgradeRequest(target.PathAndQuery, target.Authority, extraHeaders)));
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

    /// <summary>CONNECT (+TLS) + handshake, then raw frame I/O over the tunnel (frames from it are masked).</summary>
    public static async Task<RawWebSocket> ConnectRawAsync(ProxyServer proxy, Uri target, string? extraHeaders = null)
    {
        var stream = await OpenTunnelAsync(proxy, target);
        var head = await HandshakeAsync(stream, target, extraHeaders);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            await stream.DisposeAsync();
            throw new InvalidOperationException("Upgrade failed: " + head);
        }

        return new RawWebSocket(stream, isClient: true);
    }

    /// <summary>Opens a plain TCP connection to the proxy port, writes <paramref name="request"/> and reads the response head and body.</summary>
    /// <param name="encoding">
    /// How the request is written and the body read: ASCII out and UTF-8 back by default; Latin-1 both ways
    /// puts every byte on the wire as one char, for tests of non-ASCII header bytes.
    /// </param>
    public static async Task<(string Head, string Body)> SendRawRequestAsync(ProxyServer proxy, string request, Encoding? encoding = null)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort, cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync((encoding ?? Encoding.ASCII).GetBytes(request), cts.Token);
        var head = await ReadHeadAsync(stream).WaitAsync(cts.Token);
        var body = await ReadBodyAsync(stream, head).WaitAsync(cts.Token);
        return (head, (encoding ?? Encoding.UTF8).GetString(body));
    }

    /// <summary>Reads an HTTP/1.1 response body after <paramref name="head"/>: Content-Length, chunked, or until EOF.</summary>
    public static async Task<byte[]> ReadBodyAsync(Stream stream, string head)
    {
        using var body = new MemoryStream();
        var length = RawWebSocketServer.HeaderValue(head, "Content-Length");
        if (length is not null)
        {
            var bytes = new byte[int.Parse(length, System.Globalization.CultureInfo.InvariantCulture)];
            await stream.ReadExactlyAsync(bytes);
            return bytes;
        }

        if (RawWebSocketServer.HeaderValue(head, "Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)
        {
            while (true)
            {
                var sizeLine = await ReadLineAsync(stream);
                var size = int.Parse(sizeLine.Split(';')[0].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    while ((await ReadLineAsync(stream)).Length > 0)
                    {
                        // trailers
                    }

                    return body.ToArray();
                }

                var chunk = new byte[size];
                await stream.ReadExactlyAsync(chunk);
                body.Write(chunk);
                await ReadLineAsync(stream);
            }
        }

        await stream.CopyToAsync(body);
        return body.ToArray();
    }

    private static async Task<string> ReadLineAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one) == 1)
        {
            if (one[0] == '\n')
            {
                break;
            }

            if (one[0] != '\r')
            {
                bytes.Add(one[0]);
            }
        }

        return Encoding.Latin1.GetString(bytes.ToArray());
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

    /// <summary>A validation callback that accepts any certificate and keeps a copy of the one shown (the handshake disposes its own).</summary>
    public static RemoteCertificateValidationCallback KeepPresented(System.Runtime.CompilerServices.StrongBox<X509Certificate2?> presented) =>
        (_, certificate, _, _) =>
        {
            presented.Value = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        };

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
