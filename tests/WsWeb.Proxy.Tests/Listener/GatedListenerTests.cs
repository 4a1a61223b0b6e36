using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>
/// The accept gate of both listeners: a refused connection holds a descriptor until its close, so accepts wait for a
/// socket slot (the limit plus a few being refused) and a flood cannot run the process out of descriptors.
/// </summary>
public sealed class GatedListenerTests
{
    [Fact]
    public async Task WithEverySlotTaken_TheNextClientWaitsInTheBacklog_UntilAConnectionEnds()
    {
        var limiter = new ConnectionLimiter("proxy", 1, "test", NullLogger.Instance);
        var slots = limiter.Limit + limiter.RefusalRoom;
        await using var listener = await BindAsync(limiter);
        var clients = await ConnectAsync(listener, slots + 1);
        try
        {
            // Accepted, but their connection middleware has not run yet (as when the thread pool is behind): slots held.
            var accepted = new List<ConnectionContext>();
            for (var i = 0; i < slots; i++)
            {
                accepted.Add((await listener.AcceptAsync())!);
            }

            Assert.Equal(slots, limiter.SocketsInUse);
            var next = listener.AcceptAsync().AsTask();
            await Task.Delay(TimeSpan.FromMilliseconds(300));
            Assert.False(next.IsCompleted, "accepted a socket beyond the slots");

            // One admitted connection ends, one is refused (over the limit of 1): each gives its slot back.
            var admitted = accepted[0];
            var open = new TaskCompletionSource();
            var serving = limiter.OnConnectionAsync(admitted, _ => open.Task);
            await limiter.OnConnectionAsync(accepted[1], _ => throw new InvalidOperationException("a refused connection reached the next middleware"));
            Assert.Equal(1, limiter.Refused);
            var connection = await next.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(connection);
            Assert.Equal(slots, limiter.SocketsInUse);

            open.SetResult();
            await serving;
            Assert.Equal(slots - 1, limiter.SocketsInUse);
            accepted.Add(connection);
            foreach (var context in accepted)
            {
                await context.DisposeAsync();
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Unbinding_EndsAWaitForASlot()
    {
        // Kestrel waits for the accept loop to end before it closes the connections that hold the slots.
        var limiter = new ConnectionLimiter("web", 1, "test", NullLogger.Instance);
        await using var listener = await BindAsync(limiter);
        var clients = await ConnectAsync(listener, limiter.Limit + limiter.RefusalRoom);
        try
        {
            var accepted = new List<ConnectionContext>();
            for (var i = 0; i < clients.Count; i++)
            {
                accepted.Add((await listener.AcceptAsync())!);
            }

            var next = listener.AcceptAsync().AsTask();
            await listener.UnbindAsync();
            Assert.Null(await next.WaitAsync(TimeSpan.FromSeconds(10)));
            foreach (var context in accepted)
            {
                await context.DisposeAsync();
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task BothListenersOfAHost_AreGated()
    {
        await using var proxy = await ProxyServer.StartAsync();
        var limiters = proxy.Services.GetRequiredService<ConnectionLimiters>();
        if (limiters.Web is null)
        {
            // No open-file limit here (Windows) and no --max-connections: nothing to keep under.
            Assert.False(OperatingSystem.IsLinux());
            return;
        }

        // Idle, each listener's accept loop holds the slot of the client it waits for.
        var web = limiters.Web;
        var proxyListener = limiters.Proxy!;
        await Eventually.AssertAsync(() => web.SocketsInUse == 1 && proxyListener.SocketsInUse == 1, "each listener waiting to accept");
        using (var toWeb = new TcpClient())
        using (var toProxy = new TcpClient())
        {
            await toWeb.ConnectAsync(IPAddress.Loopback, proxy.WebPort);
            await toProxy.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
            await Eventually.AssertAsync(() => web.SocketsInUse == 2 && proxyListener.SocketsInUse == 2, "each accept took a slot of its own listener");
        }

        await Eventually.AssertAsync(() => web.SocketsInUse == 1 && proxyListener.SocketsInUse == 1, "each closed connection gave its slot back");
    }

    private static async Task<IConnectionListener> BindAsync(ConnectionLimiter limiter) =>
        await new ProxyTransportFactory(TimeProvider.System, NullLogger<ProxyTransportFactory>.Instance, limiter).BindAsync(new ProxyEndPoint(IPAddress.Loopback, 0));

    private static async Task<List<TcpClient>> ConnectAsync(IConnectionListener listener, int count)
    {
        var port = ((IPEndPoint)listener.EndPoint).Port;
        var clients = new List<TcpClient>();
        for (var i = 0; i < count; i++)
        {
            var client = new TcpClient();
            clients.Add(client);
            await client.ConnectAsync(IPAddress.Loopback, port);
        }

        return clients;
    }
}
