using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using WsWeb.Core;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Forwarding;

/// <summary>The target asked for is one of our own listeners.</summary>
internal sealed class SelfTargetException(string message) : Exception(message);

/// <summary>
/// Opens upstream connections for forwarded requests and WebSocket handshakes through
/// <see cref="SocketsHttpHandler"/>. We do TCP and TLS ourselves in its ConnectCallback so we can
/// refuse our own listeners after DNS, apply the upstream trust policy and record what TLS was
/// negotiated; the handler then speaks plain HTTP/1.1 over that stream (including 101 upgrades,
/// whose response content is the raw duplex connection).
/// </summary>
internal sealed class UpstreamConnector : IDisposable
{
    public static readonly HttpRequestOptionsKey<ConnectionInfo> ServerConnKey = new("wsweb.server_conn");

    /// <summary>
    /// Where a request that wants it learns the socket its request went out on: a WebSocket relay watches the
    /// server's socket for the server leaving while nothing reads it (see <see cref="PeerWatch"/>).
    /// </summary>
    public static readonly HttpRequestOptionsKey<StrongBox<Socket?>> SocketKey = new("wsweb.socket");

    /// <summary>The host to dial and the TLS name to ask for, when the request URI's host is a pool key (<see cref="PoolHost"/>).</summary>
    public static readonly HttpRequestOptionsKey<(string Host, string TlsName)> DialKey = new("wsweb.dial");

    private static readonly TimeSpan TunnelTimeout = TimeSpan.FromSeconds(15);
    private const int MaxTunnelAnswer = 16 * 1024;

    private readonly OwnEndpoints _own;
    private readonly UpstreamTlsPolicy _tlsPolicy;
    private readonly TimeProvider _time;
    private readonly UpstreamProxy? _via;
    private readonly HttpMessageInvoker _plain;
    private readonly HttpMessageInvoker _tls;

    public UpstreamConnector(OwnEndpoints own, UpstreamTlsPolicy tlsPolicy, ProxyOptions options, TimeProvider time)
    {
        _own = own;
        _tlsPolicy = tlsPolicy;
        _time = time;
        _via = options.Upstream;
        _plain = new HttpMessageInvoker(CreateHandler(useTls: false));
        _tls = new HttpMessageInvoker(CreateHandler(useTls: true));
    }

    // The flow whose request is being sent on this async path: every flow, the one that had a connection opened
    // included, learns which connection carried it when its request goes out on it (RecordedConnectionStream).
    private static readonly AsyncLocal<SendingRequest> Sending = new();

    /// <summary>Sends <paramref name="request"/> (its URI always http://host:port) over plain TCP or TLS.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, bool useTls, CancellationToken cancellationToken)
    {
        request.Options.TryGetValue(ServerConnKey, out var serverConn);
        request.Options.TryGetValue(SocketKey, out var socket);
        Sending.Value = new SendingRequest(serverConn, socket);   // restored when this method returns
        return await (useTls ? _tls : _plain).SendAsync(request, cancellationToken);
    }

    /// <summary>
    /// A stand-in host for the request URI when the server name differs from the host dialled. SocketsHttpHandler pools
    /// connections by the URI's host and port; keyed by the IP alone, a tunnel to 192.0.2.1 with SNI a.example could be
    /// handed a connection opened for b.example, and keyed by the name, one to the real a.example. It never reaches the
    /// wire: the request's Host header is the client's, and the connect callback dials <paramref name="host"/>.
    /// </summary>
    public static string PoolHost(string host, string tlsName)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{host}\n{tlsName}"), hash);
        return Convert.ToHexStringLower(hash[..16]) + ".sni.wsweb.invalid";
    }

    public void Dispose()
    {
        _plain.Dispose();
        _tls.Dispose();
    }

    private SocketsHttpHandler CreateHandler(bool useTls) => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        ConnectTimeout = TimeSpan.FromSeconds(15),
        EnableMultipleHttp2Connections = false,
        MaxResponseHeadersLength = 256,
        // Forward exactly what was received: no trace headers of our own, and header bytes kept as they are
        // (Latin-1 maps every byte to one char and back; Kestrel's side uses it too, see ListenProxy).
        ActivityHeadersPropagator = null,
        RequestHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
        ResponseHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
        ConnectCallback = (context, cancellationToken) => ConnectAsync(context, useTls, cancellationToken),
    };

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, bool useTls, CancellationToken cancellationToken)
    {
        // The connection's own record: the pool may send another request on it than the one that asked for it
        // (that one may go out on a connection freed meanwhile). Each flow learns which when its request goes out.
        var (host, tlsName) = context.InitialRequestMessage.Options.TryGetValue(DialKey, out var dial)
            ? dial
            : (context.DnsEndPoint.Host, context.DnsEndPoint.Host);
        var info = new ConnectionInfo
        {
            // The URI's IPv6 host comes bracketed; a dialled one (DialKey) does not.
            Address = host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]:{context.DnsEndPoint.Port}" : $"{host}:{context.DnsEndPoint.Port}",
            TimestampStart = Timestamps.Now(_time),
        };
        try
        {
            return await ConnectAsync(host, context.DnsEndPoint.Port, tlsName, useTls, info, cancellationToken);
        }
        catch when (context.InitialRequestMessage.Options.TryGetValue(ServerConnKey, out var initiator) && initiator.TimestampStart is null)
        {
            // A failed connect is the asking flow's: it shows how far the attempt got.
            initiator.CopyFrom(info);
            throw;
        }
    }

    /// <summary>
    /// A plain TCP connection to <paramref name="host"/>:<paramref name="port"/> (through the upstream proxy in upstream
    /// mode), for a tunnel WsWeb passes through untouched; WsWeb's own listeners are refused as for any request.
    /// </summary>
    /// <returns>The connection, and its socket (to the upstream proxy in upstream mode), for half-closing.</returns>
    public async Task<(Stream Stream, Socket Socket)> OpenTunnelAsync(string host, int port, CancellationToken cancellationToken)
    {
        var (socket, stream) = await OpenAsync(host, port, new ConnectionInfo(), cancellationToken);
        return (stream, socket);
    }

    /// <summary>TCP to the server, or in upstream mode to the proxy and a CONNECT through it; own listeners refused.</summary>
    private async Task<(Socket Socket, NetworkStream Stream)> OpenAsync(string host, int port, ConnectionInfo info, CancellationToken cancellationToken)
    {
        var (dialHost, dialPort) = _via is { } via ? (via.Host, via.Port) : (host, port);
        if (_via is not null && _own.IsOwn(host, port))
        {
            // The proxy resolves the name; what can be told here (a literal or localhost) is refused here.
            throw new SelfTargetException($"{host}:{port} is one of WsWeb's own listeners.");
        }

        var addresses = IPAddress.TryParse(dialHost, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(dialHost, cancellationToken);
        foreach (var address in addresses)
        {
            if (_own.IsOwn(address, dialPort))
            {
                throw new SelfTargetException(_via is null
                    ? $"{host}:{port} is one of WsWeb's own listeners."
                    : $"the upstream proxy {_via} is one of WsWeb's own listeners (--mode upstream:).");
            }
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, dialPort, cancellationToken);
            info.PeerName = EndPointText.Format(socket.RemoteEndPoint);
            info.SockName = EndPointText.Format(socket.LocalEndPoint);
            info.TimestampTcpSetup = Timestamps.Now(_time);
            var network = new NetworkStream(socket, ownsSocket: true);
            if (_via is { } proxy)
            {
                await TunnelAsync(network, proxy, host, port, cancellationToken);
            }

            return (socket, network);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Asks the upstream proxy for a tunnel to the server; anything but a 2xx is the exchange's failure.</summary>
    private async Task TunnelAsync(NetworkStream network, UpstreamProxy proxy, string host, int port, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TunnelTimeout);
        var authority = $"{HttpRequestData.HostForUrl(host)}:{port}";
        var request = new System.Text.StringBuilder($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if (proxy.Credentials is { } credentials)
        {
            request.Append("Proxy-Authorization: Basic ").Append(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(credentials))).Append("\r\n");
        }

        await network.WriteAsync(System.Text.Encoding.UTF8.GetBytes(request.Append("\r\n").ToString()), timeout.Token);

        // Byte by byte up to the blank line: what follows is the server's, and must stay in the stream.
        var head = new List<byte>(256);
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (head.Count >= MaxTunnelAnswer || await network.ReadAsync(one, timeout.Token) == 0)
            {
                throw new IOException($"the upstream proxy {proxy} closed the connection before answering the CONNECT to {authority}.");
            }

            head.Add(one[0]);
        }

        var statusLine = System.Text.Encoding.Latin1.GetString([.. head]).Split("\r\n", 2)[0];
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[1].Length != 3 || parts[1][0] != '2')
        {
            throw new IOException($"the upstream proxy {proxy} answered the CONNECT to {authority} with '{statusLine}'.");
        }
    }

    private async ValueTask<Stream> ConnectAsync(string host, int port, string tlsName, bool useTls, ConnectionInfo info, CancellationToken cancellationToken)
    {
        var (socket, network) = await OpenAsync(host, port, info, cancellationToken);
        try
        {
            if (!useTls)
            {
                return new RecordedConnectionStream(network, info, socket);
            }

            var tls = new SslStream(network, leaveInnerStreamOpen: false);
            var tlsOptions = _tlsPolicy.CreateOptions(tlsName);
            string? rejection = null;
            IReadOnlyList<byte[]> certificates = [];
            tlsOptions.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
            {
                // Recorded as mitmproxy's certificate_list: what the server sent, DER, leaf first. Not the chain .NET
                // built, which adds the root from the trust store and any intermediate it fetched itself.
                if (certificate is not null)
                {
                    var leaf = certificate.GetRawCertData();
                    certificates = [leaf, .. (chain?.ChainPolicy.ExtraStore ?? []).Select(c => c.RawData).Where(der => !der.AsSpan().SequenceEqual(leaf))];
                }
                if (_tlsPolicy.ValidateServerCertificate(sender, certificate, chain, errors))
                {
                    return true;
                }

                rejection = _tlsPolicy.Describe(tlsName, certificate, chain, errors);
                return false;
            };
            try
            {
                await tls.AuthenticateAsClientAsync(tlsOptions, cancellationToken);
            }
            catch (AuthenticationException ex) when (rejection is not null)
            {
                // The framework only says the callback said no; say why.
                await tls.DisposeAsync();
                throw new UpstreamCertificateException(rejection, ex);
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException && !cancellationToken.IsCancellationRequested)
            {
                // Not the certificate: .NET says only "Authentication failed, see inner exception", the cause is below it.
                await tls.DisposeAsync();
                throw new AuthenticationException(TlsFailures.DescribeUpstream(ex), ex);
            }
            catch
            {
                await tls.DisposeAsync();
                throw;
            }

            info.TlsEstablished = true;
            info.Sni = IPAddress.TryParse(tlsName, out _) ? null : tlsName;
            info.TlsVersion = TlsNames.Version(tls.SslProtocol);
            info.Cipher = Listener.TlsNames.Cipher(tls.NegotiatedCipherSuite);
            info.Alpn = tls.NegotiatedApplicationProtocol.Protocol.IsEmpty ? null : tls.NegotiatedApplicationProtocol.ToString();
            info.CertificateSubject = tls.RemoteCertificate?.Subject;
            info.CertificateChain = certificates;
            info.TimestampTlsSetup = Timestamps.Now(_time);
            return new RecordedConnectionStream(tls, info, socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An upstream connection that tells each flow sent over it what it is: SocketsHttpHandler reuses connections,
    /// and a flow whose request went out on one opened for an earlier flow gets that connection's details (its id
    /// too: as in mitmproxy, flows on one connection share it).
    /// </summary>
    private sealed class RecordedConnectionStream(Stream inner, ConnectionInfo connection, Socket socket) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count)
        {
            Describe();
            inner.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Describe();
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Describe();
            return inner.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Describe();
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();

        private void Describe()
        {
            var sending = Sending.Value;
            if (sending.ServerConn is { } flowSide && flowSide.Id != connection.Id)
            {
                flowSide.CopyFrom(connection);
            }

            if (sending.Socket is { } box)
            {
                box.Value = socket;
            }
        }
    }

    private readonly record struct SendingRequest(ConnectionInfo? ServerConn, StrongBox<Socket?>? Socket);
}

/// <summary>An upstream certificate WsWeb refused (the message says why): the one TLS failure --ssl-insecure can help with.</summary>
internal sealed class UpstreamCertificateException(string message, Exception inner) : AuthenticationException(message, inner);
