using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>
/// The proxy listener's own Kestrel transport, on real sockets. (Every other proxy test runs through
/// it as well: the test proxy listens on 127.0.0.1, which ListenProxy binds with this transport.)
/// </summary>
public sealed class ProxyTransportTests
{
    [Fact]
    public void BindsOnlyProxyEndpoints_SoOtherListenersStayOnKestrelsSockets()
    {
        var factory = new ProxyTransportFactory();
        Assert.True(factory.CanBind(new ProxyEndPoint(IPAddress.Loopback, 0)));
        Assert.False(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.False(factory.CanBind(new DnsEndPoint("localhost", 0)));
    }

    [Fact]
    public async Task AcceptedConnection_ReadsAndWritesThroughItsPipes_AndAbortClosesTheSocket()
    {
        var factory = new ProxyTransportFactory();
        await using var listener = await factory.BindAsync(new ProxyEndPoint(IPAddress.Loopback, 0));
        var bound = Assert.IsType<ProxyEndPoint>(listener.EndPoint);
        Assert.NotEqual(0, bound.Port);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, bound.Port);
        await using var connection = await listener.AcceptAsync();
        Assert.NotNull(connection);
        var raw = Assert.IsType<StreamConnection>(connection).Raw;
        Assert.Same(connection.Transport.Input, raw.Pipe.Input);
        Assert.IsType<KestrelOutput>(connection.Transport.Output);
        Assert.Equal(((IPEndPoint)client.Client.LocalEndPoint!).Port, Assert.IsType<IPEndPoint>(connection.RemoteEndPoint).Port);

        var stream = client.GetStream();
        await stream.WriteAsync("hello"u8.ToArray());
        var read = await connection.Transport.Input.ReadAtLeastAsync(5);
        Assert.Equal("hello", Encoding.ASCII.GetString(read.Buffer));
        connection.Transport.Input.AdvanceTo(read.Buffer.End);

        await connection.Transport.Output.WriteAsync("world"u8.ToArray());
        var reply = new byte[5];
        await stream.ReadExactlyAsync(reply);
        Assert.Equal("world", Encoding.ASCII.GetString(reply));

        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = connection.ConnectionClosed.Register(() => closed.SetResult());
        connection.Abort(new ConnectionAbortedException("test"));
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await ReadOrZeroAsync(stream));
    }

    [Fact]
    public async Task APortInUse_IsReportedAsKestrelExpects()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        await Assert.ThrowsAsync<AddressInUseException>(async () => await new ProxyTransportFactory().BindAsync(new ProxyEndPoint(IPAddress.Loopback, port)));
    }

    [Fact]
    public async Task TheProxyListener_IsServedByThisTransport()
    {
        await using var proxy = await ProxyServer.StartAsync();
        var transport = proxy.Services.GetServices<IConnectionListenerFactory>().OfType<ProxyTransportFactory>().Single();
        var before = transport.Accepted;

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        await Eventually.AssertAsync(() => transport.Accepted == before + 1, "the connection accepted by the proxy transport");
    }

    [Fact]
    public async Task ProxyStopsCleanly_WithAnIdleClientConnected()
    {
        var proxy = await ProxyServer.StartAsync();
        using var idle = new TcpClient();
        await idle.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        await proxy.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, await ReadOrZeroAsync(idle.GetStream()));
    }

    /// <summary>0 when the peer closed or reset the connection.</summary>
    private static async Task<int> ReadOrZeroAsync(NetworkStream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
