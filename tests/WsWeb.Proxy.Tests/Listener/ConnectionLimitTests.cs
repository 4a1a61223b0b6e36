using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>
/// The proxy listener's connection limit (--max-connections, or a share of the open-file limit) and the transport's
/// pause when the process is out of file descriptors: a flood of connections is refused, it does not take the process down.
/// </summary>
public sealed class ConnectionLimitTests
{
    [Fact]
    public void DefaultLimits_LeaveTheProcessItsOwnDescriptors_AndTwoPerProxiedConnection()
    {
        var limits = ConnectionLimits.For(new ProxyOptions(), openFileLimit: 1200);

        // 1200 - 384 kept for the process: a third to the proxy (two descriptors each), a sixth to the web listener.
        Assert.Equal(272, limits.Proxy);
        Assert.Equal(136, limits.Web);
        Assert.False(limits.ProxyFromOption);
        Assert.True(limits.FitsOpenFileLimit);
        Assert.True((2 * limits.Proxy!.Value) + limits.Web!.Value + ConnectionLimits.Reserved < 1200);
    }

    [Fact]
    public void AGivenLimitWins_AndOneBeyondTheOpenFileLimitIsFlagged()
    {
        var given = ConnectionLimits.For(new ProxyOptions { MaxConnections = 5000 }, openFileLimit: 1200);
        Assert.Equal(5000, given.Proxy);
        Assert.True(given.ProxyFromOption);
        Assert.False(given.FitsOpenFileLimit);

        // Where no open-file limit is known (Windows), only a given limit applies.
        Assert.Equal(new ConnectionLimits(null, null, null, false), ConnectionLimits.For(new ProxyOptions(), openFileLimit: null));
        Assert.Equal(7, ConnectionLimits.For(new ProxyOptions { MaxConnections = 7 }, openFileLimit: null).Proxy);

        // A limit below what the process needs for itself still leaves every listener a few connections.
        var tiny = ConnectionLimits.For(new ProxyOptions(), openFileLimit: 100);
        Assert.Equal(ConnectionLimits.Minimum, tiny.Proxy);
        Assert.Equal(ConnectionLimits.Minimum, tiny.Web);
    }

    [Fact]
    public void TheOpenFileLimitIsRead()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // What /proc says this process may open is what the limits are made from.
        var line = File.ReadLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        Assert.Equal(soft == "unlimited" ? null : long.Parse(soft, System.Globalization.CultureInfo.InvariantCulture), ConnectionLimits.ReadOpenFileLimit());
    }

    [Fact]
    public async Task OutOfDescriptors_AcceptingWaitsInsteadOfRetryingAtOnce_AndSaysSoOnce()
    {
        // The kernel's EMFILE stood in for: each failure leaves the connection queued, so the old retry-at-once spun.
        var attempts = 0;
        var failures = 3;
        var timers = new ManualTimers();
        var log = new LogCapture();
        var factory = new ProxyTransportFactory(timers, log.CreateLogger<ProxyTransportFactory>())
        {
            AcceptSocket = (socket, cancellationToken) =>
            {
                Interlocked.Increment(ref attempts);
                return Volatile.Read(ref failures) > 0 && Interlocked.Decrement(ref failures) >= 0
                    ? throw new SocketException((int)SocketError.TooManyOpenSockets)
                    : socket.AcceptAsync(cancellationToken);
            },
        };
        await using var listener = await factory.BindAsync(new ProxyEndPoint(IPAddress.Loopback, 0));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.EndPoint).Port);

        var accepting = listener.AcceptAsync().AsTask();
        for (var failed = 1; failed <= 3; failed++)
        {
            // One attempt per pause: the next waits for the clock.
            await Eventually.AssertAsync(() => timers.Pending == 1, $"accepting paused after failure {failed}");
            Assert.Equal(failed, Volatile.Read(ref attempts));
            Assert.False(accepting.IsCompleted);
            timers.FireAll();
        }

        await using var connection = await accepting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(connection);
        Assert.Equal(4, attempts);
        Assert.Single(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("out of file descriptors", StringComparison.Ordinal));
        Assert.Single(log.Entries, e => e.Message.Contains("accepts connections again", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConnectionsBeyondTheLimit_AreAnswered503AndClosed_WhileTheOpenOnesAndTheWebListenerAreServed()
    {
        var log = new LogCapture();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxConnections = 3 }, services => services.AddSingleton<ILoggerProvider>(log));
        await using var echo = await EchoServer.StartAsync();
        var limiter = proxy.Services.GetRequiredService<ConnectionLimiters>().Proxy!;

        // Two idle connections and a WebSocket: an upgraded connection still holds its descriptors, so it counts.
        using var idle1 = await ConnectAsync(proxy.ProxyPort);
        using var idle2 = await ConnectAsync(proxy.ProxyPort);
        using var webSocket = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        await Eventually.AssertAsync(() => limiter.Open == 3, "three connections counted");

        for (var i = 0; i < 5; i++)
        {
            using var refused = await ConnectAsync(proxy.ProxyPort);
            var answer = await ReadToEndAsync(refused);
            Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", answer, StringComparison.Ordinal);
            Assert.Contains("Connection: close", answer, StringComparison.Ordinal);
            Assert.Contains("3 connections open on its proxy listener, its limit (--max-connections)", answer, StringComparison.Ordinal);
        }

        Assert.Equal(5, limiter.Refused);
        Assert.Single(log.Messages(LogLevel.Warning), m => m.Contains("proxy listener has 3 connections open", StringComparison.Ordinal));

        // What is open keeps working, and the web listener is not the proxy's to fill.
        await webSocket.SendAsync("still here"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var (_, echoed, _) = await ProxyClients.ReceiveMessageAsync(webSocket);
        Assert.Equal("still here", Encoding.UTF8.GetString(echoed));
        using (var web = new HttpClient())
        {
            Assert.Equal("ok", await web.GetStringAsync(new Uri($"http://127.0.0.1:{proxy.WebPort}/healthz")));
        }

        // Once one closes, a new WebSocket gets through.
        idle1.Dispose();
        await Eventually.AssertAsync(() => limiter.Open == 2, "the closed connection no longer counted");
        using var second = await ProxyClients.ConnectWithClientWebSocketAsync(proxy, echo.WsUri());
        await second.SendAsync("after"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("after", Encoding.UTF8.GetString((await ProxyClients.ReceiveMessageAsync(second)).Data));
        Assert.Single(log.Messages(), m => m.Contains("accepts connections again; 5 were refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ABlockedClientOverTheLimit_IsClosedWithoutAWord()
    {
        // A public address (which a test cannot connect from) with --block-global, as on a listener bound to 0.0.0.0:
        // the refusal must not tell a scanner what listens here, as the address policy itself tells it nothing.
        var limiters = new ConnectionLimiters(new ConnectionLimits(1, null, null, true), new ClientAddressPolicy(blockGlobal: true, blockPrivate: false), new LogCapture().CreateLoggerFactory());
        var limiter = limiters.Proxy!;
        var release = new TaskCompletionSource();
        var holding = limiter.OnConnectionAsync(Connection("192.168.1.20"), _ => release.Task);

        var fromPublic = Connection("8.8.8.8");
        await limiter.OnConnectionAsync(fromPublic, _ => throw new InvalidOperationException("over the limit, not passed on"));
        var fromLan = Connection("192.168.1.21");
        await limiter.OnConnectionAsync(fromLan, _ => throw new InvalidOperationException("over the limit, not passed on"));

        Assert.Empty(await WrittenToAsync(fromPublic));
        Assert.StartsWith("HTTP/1.1 503", Encoding.ASCII.GetString(await WrittenToAsync(fromLan)), StringComparison.Ordinal);
        Assert.Equal(2, limiter.Refused);
        release.SetResult();
        await holding;
        Assert.Equal(0, limiter.Open);

        static Microsoft.AspNetCore.Connections.DefaultConnectionContext Connection(string address)
        {
            var toClient = new System.IO.Pipelines.Pipe();
            var fromClient = new System.IO.Pipelines.Pipe();
            return new Microsoft.AspNetCore.Connections.DefaultConnectionContext(Guid.NewGuid().ToString(), new DuplexPipe(fromClient.Reader, toClient.Writer), new DuplexPipe(toClient.Reader, fromClient.Writer))
            {
                RemoteEndPoint = new IPEndPoint(IPAddress.Parse(address), 40000),
            };
        }

        static async Task<byte[]> WrittenToAsync(Microsoft.AspNetCore.Connections.DefaultConnectionContext connection)
        {
            await connection.Transport.Output.CompleteAsync();
            var read = await connection.Application!.Input.ReadAsync();
            return read.Buffer.ToArray();
        }
    }

    private static async Task<TcpClient> ConnectAsync(int port)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        return client;
    }

    private static async Task<string> ReadToEndAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new MemoryStream();
        await client.GetStream().CopyToAsync(buffer, timeout.Token);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
