using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>--ignore-hosts / --allow-hosts (mitmproxy's ignore_hosts / allow_hosts): matching tunnels pass through untouched.</summary>
public sealed class HostPassthroughTests : IDisposable
{
    private readonly CertificateAuthority _serverCa = CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);

    public void Dispose() => _serverCa.Dispose();

    [Theory]
    [InlineData(new[] { "^LOCALHOST:" }, new string[0])]
    [InlineData(new[] { "^example\\.invalid:", "calh" }, new string[0])]
    [InlineData(new string[0], new[] { "^example\\.invalid:" })]
    public async Task A_matching_tunnel_reaches_the_server_with_its_own_certificate_and_is_not_recorded(string[] ignore, string[] allow)
    {
        await using var echo = await EchoServer.StartAsync(_serverCa.IssueLeaf("localhost"));
        await using var proxy = await ProxyServer.StartAsync(o => o with { IgnoreHosts = ignore, AllowHosts = allow });
        var presented = new System.Runtime.CompilerServices.StrongBox<X509Certificate2?>();
        using var client = new ClientWebSocket();
        client.Options.Proxy = new WebProxy(proxy.ProxyUri);
        client.Options.RemoteCertificateValidationCallback = ProxyClients.KeepPresented(presented);
        await client.ConnectAsync(echo.WssUri(), CancellationToken.None);

        await client.SendAsync("untouched"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("untouched", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(client)).Data));
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);

        // The server's own certificate, not a leaf of WsWeb's CA: the client's pin would hold.
        Assert.True(ProxyClients.ChainsTo(presented.Value, _serverCa.Certificate));
        Assert.False(ProxyClients.ChainsTo(presented.Value, proxy.CaCertificate));
        Assert.Equal("done", Assert.Single(echo.ClosesReceived).Reason);
        Assert.Empty(proxy.Store.Snapshot());
    }

    [Fact]
    public async Task A_tunnel_that_does_not_match_is_intercepted_as_before()
    {
        await using var echo = await EchoServer.StartAsync(_serverCa.IssueLeaf("localhost"));
        await using var proxy = await ProxyServer.StartAsync(o => o with { IgnoreHosts = ["^example\\.invalid:"] });
        using var client = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WssUri());

        await client.SendAsync("seen"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await ProxyClients.ReceiveMessageAsync(client);

        var flow = await proxy.WaitForFlowAsync(f => f.IsWebSocket);
        Assert.True(flow.ClientConn.TlsEstablished);
    }

    [Fact]
    public async Task A_passed_through_tunnel_to_a_closed_port_is_a_502_saying_so()
    {
        int port;
        using (var free = new TcpListener(IPAddress.Loopback, 0))
        {
            free.Start();
            port = ((IPEndPoint)free.LocalEndpoint).Port;
        }

        await using var proxy = await ProxyServer.StartAsync(o => o with { IgnoreHosts = ["."] });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        var head = await ProxyClients.ReadHeadAsync(stream);
        var body = Encoding.UTF8.GetString(await ProxyClients.ReadBodyAsync(stream, head));

        Assert.StartsWith("HTTP/1.1 502", head, StringComparison.Ordinal);
        Assert.Contains($"could not reach 127.0.0.1:{port} (passed through, --ignore-hosts)", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shutdown_ends_an_open_passthrough_tunnel_instead_of_waiting_for_kestrels_timeout()
    {
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        var proxy = await ProxyServer.StartAsync(o => o with { IgnoreHosts = ["."] });
        using var tcp = new TcpClient();
        var stream = await OpenTunnelAsync(tcp, proxy, server);
        using var accepted = await server.AcceptTcpClientAsync();   // open, silent both ways

        // Kestrel's shutdown gives connections 30 s; a tunnel nothing closes used to take all of it.
        var stopping = proxy.DisposeAsync().AsTask();
        Assert.Same(stopping, await Task.WhenAny(stopping, Task.Delay(TimeSpan.FromSeconds(15))));
        await stopping;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            Assert.Equal(0, await stream.ReadAsync(new byte[1], cts.Token));
        }
        catch (IOException)
        {
            // A reset says the same: the tunnel is gone.
        }
    }

    [Fact]
    public async Task When_the_server_closes_the_client_hears_it_at_once()
    {
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        await using var proxy = await ProxyServer.StartAsync(o => o with { IgnoreHosts = ["."] });
        using var tcp = new TcpClient();
        var stream = await OpenTunnelAsync(tcp, proxy, server);

        using (var accepted = await server.AcceptTcpClientAsync())
        {
            await accepted.GetStream().WriteAsync("bye"u8.ToArray());
        }

        // The server's bytes, then the end of the stream: the client is not left waiting on a dead tunnel.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new MemoryStream();
        var buffer = new byte[16];
        int read;
        while ((read = await stream.ReadAsync(buffer, cts.Token)) > 0)
        {
            received.Write(buffer, 0, read);
        }

        Assert.Equal("bye", Encoding.ASCII.GetString(received.ToArray()));
    }

    /// <summary>A CONNECT through <paramref name="proxy"/> to <paramref name="server"/>, passed through; the tunnel's stream.</summary>
    private static async Task<NetworkStream> OpenTunnelAsync(TcpClient tcp, ProxyServer proxy, TcpListener server)
    {
        await tcp.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var stream = tcp.GetStream();
        var port = ((IPEndPoint)server.LocalEndpoint).Port;
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await ProxyClients.ReadHeadAsync(stream), StringComparison.Ordinal);
        return stream;
    }
}
