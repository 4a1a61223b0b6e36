using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Certificates;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Kestrel connection middleware on the proxy endpoint. Kestrel's HTTP layer does not turn CONNECT
/// into a tunnel, so this answers CONNECT itself, terminates TLS inside the tunnel with a leaf
/// certificate from our CA, and hands the decrypted pipe to Kestrel, which then parses the inner
/// requests as if they had arrived directly. Anything that is not a CONNECT passes on to Kestrel through a
/// <see cref="RequestHeadReader"/>, which shows each request line's ws:// or wss:// target as http:// or https://.
/// </summary>
internal sealed partial class ProxyConnectionMiddleware(
    CertificateAuthority authority,
    OwnEndpoints ownEndpoints,
    ClientAddressPolicy clientPolicy,
    HostPassthrough passthrough,
    WsWeb.Proxy.Forwarding.UpstreamConnector upstream,
    ProxyOptions options,
    Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime,
    FlowStore store,
    TlsHandshakeLog handshakes,
    TimeProvider time,
    ILogger<ProxyConnectionMiddleware> logger)
{
    private static readonly List<SslApplicationProtocol> Http11Only = [SslApplicationProtocol.Http11];
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);

    /// <summary>A TLS 1.3 client that closes this soon after the handshake, without a request, most likely refused the certificate.</summary>
    private static readonly TimeSpan QuickClose = TimeSpan.FromSeconds(1);

    public async Task OnConnectionAsync(ConnectionContext context, ConnectionDelegate next)
    {
        if (clientPolicy.Refusal(context.RemoteEndPoint) is { } option)
        {
            // Closed without a word, as mitmproxy does: a scanner learns nothing about what listens here.
            LogClientRefused(context.RemoteEndPoint?.ToString() ?? "?", option);
            return;
        }

        var feature = new ProxyConnectionFeature();
        feature.Client.PeerName = EndPointText.Format(context.RemoteEndPoint);
        feature.Client.SockName = EndPointText.Format(context.LocalEndPoint);
        feature.Client.TimestampStart = Timestamps.Now(time);
        feature.Connection = context as StreamConnection;
        feature.Raw = feature.Connection?.Raw;
        context.Features.Set(feature);

        // Kestrel's header timeout does not cover connection middleware: a client that connects and
        // stalls before its CONNECT head or TLS handshake is dropped after this long.
        // Shutdown asks connections to close (ConnectionClosedRequested); one still waiting for its head goes at once.
        var closing = context.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var expiry = new CancellationTokenSource(HandshakeTimeout, time);
        using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed, closing, expiry.Token);
        var handshake = handshakeTimeout.Token;
        var input = context.Transport.Input;
        string host;
        int port;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(handshake);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                // Timed out, shut down, or reset by the client: nobody is left to answer.
                return;
            }

            var buffer = result.Buffer;
            if (options.Reverse is not null && !buffer.IsEmpty && buffer.FirstSpan[0] == 0x16)
            {
                // A client of the reverse proxy speaking TLS to it (wss://, https://), as it would to the server. One
                // that sends no SNI addressed WsWeb by IP (clients send none for an address): its leaf names that address.
                input.AdvanceTo(buffer.Start);
                var addressed = context.LocalEndPoint is IPEndPoint { Address: var local }
                    ? (local.IsIPv4MappedToIPv6 ? local.MapToIPv4() : local).ToString()
                    : options.Reverse.Host;
                await InterceptTlsAsync(context, next, feature, addressed, handshake);
                return;
            }

            var status = ConnectRequest.TryParse(buffer, out host, out port, out var consumed, out var error);
            if (status == ConnectParseStatus.NotConnect)
            {
                input.AdvanceTo(buffer.Start);
                await HandOnAsync(context, next, feature);
                return;
            }

            if (status == ConnectParseStatus.Invalid)
            {
                input.AdvanceTo(buffer.End);
                await RespondAsync(context, 400, "Bad Request", error!);
                return;
            }

            if (status == ConnectParseStatus.Connect)
            {
                input.AdvanceTo(buffer.GetPosition(consumed));
                break;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }

        if (ownEndpoints.IsOwn(host, port))
        {
            RecordRefusal(feature, host, port);
            await RespondAsync(context, 403, "Forbidden", $"WsWeb does not proxy to its own listener {host}:{port}.");
            return;
        }

        if (passthrough.PassesThrough(host, port))
        {
            await PassThroughAsync(context, feature, host, port, handshake);
            return;
        }

        feature.TunnelHost = host;
        feature.TunnelPort = port;
        await context.Transport.Output.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), context.ConnectionClosed);

        bool startsWithTls;
        try
        {
            startsWithTls = await StartsWithTlsAsync(input, handshake);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // A client that resets right after our 200 (a port scanner, a client giving up) is not WsWeb's error.
            return;
        }

        if (!startsWithTls)
        {
            await HandOnAsync(context, next, feature);
            return;
        }

        await InterceptTlsAsync(context, next, feature, host, handshake);
    }

    /// <summary>
    /// Relays a tunnel's bytes to its server and back untouched (--ignore-hosts): no TLS interception, no flow. A
    /// server that cannot be reached is a 502, as for an intercepted tunnel's first request.
    /// </summary>
    private async Task PassThroughAsync(ConnectionContext context, ProxyConnectionFeature feature, string host, int port, CancellationToken handshake)
    {
        Stream server;
        Socket socket;
        try
        {
            (server, socket) = await upstream.OpenTunnelAsync(host, port, handshake);
        }
        catch (WsWeb.Proxy.Forwarding.SelfTargetException)
        {
            RecordRefusal(feature, host, port);
            await RespondAsync(context, 403, "Forbidden", $"WsWeb does not proxy to its own listener {host}:{port}.");
            return;
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ArgumentException)
        {
            LogPassthroughFailed(host, port, ex.Message);
            await RespondAsync(context, 502, "Bad Gateway", $"WsWeb could not reach {host}:{port} (passed through, --ignore-hosts): {ex.Message}");
            return;
        }

        LogPassthrough(host, port);
        await context.Transport.Output.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), context.ConnectionClosed);
        await using var serverLease = server;

        // Shutdown ends the tunnel at once: Kestrel would otherwise wait its 30 s for a connection nothing here closes.
        using var relaying = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed, lifetime.ApplicationStopping);
        var toServer = RelayAsync(() => context.Transport.Input.CopyToAsync(server, relaying.Token), then: () => socket.Shutdown(SocketShutdown.Send));
        var toClient = RelayAsync(() => server.CopyToAsync(context.Transport.Output, relaying.Token));
        if (await Task.WhenAny(toServer, toClient) == toClient)
        {
            // The server closed: nothing more can reach it, so the client's side is not read on.
            context.Transport.Input.CancelPendingRead();
        }

        // The client finished sending (its FIN went on to the server), and the server may still answer until it closes.
        await Task.WhenAll(toServer, toClient);
    }

    /// <summary>One direction of a passed-through tunnel, and <paramref name="then"/> once it ended cleanly.</summary>
    private static async Task RelayAsync(Func<Task> copy, Action? then = null)
    {
        try
        {
            await copy();
            then?.Invoke();
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // One side went away: the relay ends with it.
        }
    }

    /// <summary>
    /// Terminates the client's TLS with a leaf from our CA (for its SNI, or <paramref name="host"/>) and hands the
    /// decrypted connection to Kestrel.
    /// </summary>
    private async Task InterceptTlsAsync(ConnectionContext context, ConnectionDelegate next, ProxyConnectionFeature feature, string host, CancellationToken handshake)
    {
        await using var tls = new SslStream(new DuplexPipeStream(context.Transport), leaveInnerStreamOpen: true);
        try
        {
            await tls.AuthenticateAsServerAsync(
                (stream, hello, state, ct) => ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = ServerContext(hello.ServerName, host),
                    ApplicationProtocols = Http11Only,
                    ClientCertificateRequired = false,
                }),
                null,
                handshake);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // Often a client that does not trust our CA yet; the reason tells that apart from the rest.
            TlsFailed(context, feature, host, Forwarding.TlsFailures.DescribeClient(ex, host));
            return;
        }

        var client = feature.Client;
        client.TlsEstablished = true;
        // As sent, and only a usable name: the leaf and the upstream then follow the same name (ServerContext, ProxyTarget).
        client.Sni = HostName.AsSentSni(tls.TargetHostName);
        client.TlsVersion = TlsNames.Version(tls.SslProtocol);
        client.Cipher = TlsNames.Cipher(tls.NegotiatedCipherSuite);
        client.Alpn = tls.NegotiatedApplicationProtocol.Protocol.IsEmpty ? null : tls.NegotiatedApplicationProtocol.ToString();
        client.CertificateSubject = tls.LocalCertificate?.Subject;
        client.TimestampTlsSetup = Timestamps.Now(time);
        context.Features.Set<ITlsConnectionFeature>(new TunnelTlsFeature());

        var original = context.Transport;
        var reader = PipeReader.Create(tls, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        var writer = PipeWriter.Create(tls, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true));
        // How the first read goes tells whether the client accepted the certificate: in TLS 1.3 it checks it after the
        // server's side of the handshake is done, and says no with its first record. Kestrel reads as before, nothing
        // waits on this.
        var tls13 = tls.SslProtocol == System.Security.Authentication.SslProtocols.Tls13;
        var handshakeDone = time.GetTimestamp();
        var watched = new FirstReadWatch(reader, (first, error) =>
        {
            if (error is not null)
            {
                TlsFailed(context, feature, host, Forwarding.TlsFailures.DescribeClient(error, host));
            }
            else if (first is { Buffer.IsEmpty: false })
            {
                handshakes.RecordSuccess();
            }
            else if (tls13 && time.GetElapsedTime(handshakeDone) < QuickClose)
            {
                // .NET's client, refusing, closes at once without an alert. A connection opened ahead and closed unused
                // later (a browser's preconnect), or any close in TLS 1.2 (where the client had checked the certificate
                // before the handshake ended), is neither a success nor a failure.
                TlsFailed(context, feature, host, "the client closed the connection right after the handshake, before any request; a client that does not trust the WsWeb CA often does this");
            }
        });
        context.Transport = new DuplexPipe(watched, new KestrelOutput(writer, context.Abort));
        feature.Raw = new RawTransport(tls, new DuplexPipe(reader, writer));
        try
        {
            await HandOnAsync(context, next, feature);
        }
        finally
        {
            context.Transport = original;
            await reader.CompleteAsync();
            await writer.CompleteAsync();
        }
    }

    private void TlsFailed(ConnectionContext context, ProxyConnectionFeature feature, string host, string reason)
    {
        LogTlsFailed(context.ConnectionId, host, reason);
        handshakes.RecordFailure(new TlsHandshakeFailure(Timestamps.Now(time), feature.Client.PeerName ?? "?", host, reason));
    }

    /// <summary>
    /// Hands the connection to Kestrel's HTTP layer through a reader that shows every request head's ws:// or wss://
    /// target as http:// or https://, and an output that gives Kestrel's own refusals a body.
    /// </summary>
    private static async Task HandOnAsync(ConnectionContext context, ConnectionDelegate next, ProxyConnectionFeature feature)
    {
        var transport = context.Transport;
        var heads = new RequestHeadReader(transport.Input);
        feature.Heads = heads;
        context.Transport = new DuplexPipe(heads, new RefusalOutput(transport.Output, feature));
        try
        {
            await next(context);
        }
        finally
        {
            context.Transport = transport;
        }
    }

    /// <summary>The leaf for the SNI, or for the CONNECT host when the SNI is missing or not a usable name.</summary>
    private SslStreamCertificateContext ServerContext(string? sni, string connectHost)
    {
        if (!string.IsNullOrEmpty(sni))
        {
            try
            {
                return authority.GetServerContext(sni);
            }
            catch (ArgumentException)
            {
                // A client may send any bytes as SNI; the CONNECT target is what it asked us to reach.
            }
        }

        return authority.GetServerContext(connectHost);
    }

    private static async Task<bool> StartsWithTlsAsync(PipeReader input, CancellationToken cancellationToken)
    {
        var result = await input.ReadAsync(cancellationToken);
        var buffer = result.Buffer;
        var isTls = !buffer.IsEmpty && buffer.FirstSpan[0] == 0x16;
        input.AdvanceTo(buffer.Start);
        return isTls;
    }

    private void RecordRefusal(ProxyConnectionFeature feature, string host, int port)
    {
        feature.RecordRefusal(store, time, ConnectRequestData(host, port), "Refused: the target is one of WsWeb's own listeners.");
        LogSelfTarget(host, port);
    }

    /// <summary>How a CONNECT is recorded: mitmproxy's authority-form request, no path.</summary>
    internal static HttpRequestData ConnectRequestData(string host, int port) =>
        new() { Method = "CONNECT", Scheme = "http", Host = host, Port = port, Path = "" };

    private static async Task RespondAsync(ConnectionContext context, int status, string reason, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body + "\n");
        var head = $"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
        var output = context.Transport.Output;
        await output.WriteAsync(Encoding.ASCII.GetBytes(head));
        await output.WriteAsync(bytes);
        await output.CompleteAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {ConnectionId}: TLS handshake for {Host} failed: {Reason}")]
    private partial void LogTlsFailed(string connectionId, string host, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Passing the tunnel to {Host}:{Port} through untouched (--ignore-hosts / --allow-hosts)")]
    private partial void LogPassthrough(string host, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "A tunnel to {Host}:{Port} passed through could not reach its server: {Reason}")]
    private partial void LogPassthroughFailed(string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Closed the proxy connection from {Client}: clients from that address are refused ({Option}).")]
    private partial void LogClientRefused(string client, string option);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused to tunnel to WsWeb's own listener {Host}:{Port}")]
    private partial void LogSelfTarget(string host, int port);

    /// <summary>Tells Kestrel the inner requests arrived over TLS, so it reports the https scheme.</summary>
    private sealed class TunnelTlsFeature : ITlsConnectionFeature
    {
        public System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate { get; set; }

        public Task<System.Security.Cryptography.X509Certificates.X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
            Task.FromResult(ClientCertificate);
    }
}

internal static class TlsNames
{
    public static string Version(System.Security.Authentication.SslProtocols protocol) => protocol switch
    {
        System.Security.Authentication.SslProtocols.Tls13 => "TLSv1.3",
        System.Security.Authentication.SslProtocols.Tls12 => "TLSv1.2",
        _ => protocol.ToString(),
    };

    /// <summary>
    /// A cipher suite by OpenSSL's name, as mitmproxy records it (and so its flow files and filters hold it):
    /// <c>ECDHE-RSA-AES128-GCM-SHA256</c> for TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256. TLS 1.3 suites have one name in both.
    /// </summary>
    public static string Cipher(System.Net.Security.TlsCipherSuite suite)
    {
        var iana = suite.ToString();
        var with = iana.IndexOf("_WITH_", StringComparison.Ordinal);
        if (!iana.StartsWith("TLS_", StringComparison.Ordinal) || with < 0)
        {
            return iana;
        }

        // Key exchange and authentication first, left out for plain RSA; then the cipher, without "CBC", with the
        // key size joined to its algorithm, and without the PRF hash after an AEAD that names none (ChaCha20).
        var exchange = iana[4..with];
        var cipher = iana[(with + 6)..]
            .Replace("AES_128", "AES128", StringComparison.Ordinal)
            .Replace("AES_256", "AES256", StringComparison.Ordinal)
            .Replace("_CBC", "", StringComparison.Ordinal)
            .Replace("CHACHA20_POLY1305_SHA256", "CHACHA20_POLY1305", StringComparison.Ordinal)
            .Replace('_', '-');
        return exchange == "RSA" ? cipher : $"{exchange.Replace('_', '-')}-{cipher}";
    }
}
