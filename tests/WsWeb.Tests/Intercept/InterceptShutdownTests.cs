using System.Net.Http.Json;
using System.Net.WebSockets;
using Microsoft.Extensions.Hosting;
using WsWeb.Intercept;
using WsWeb.Proxy.WebSockets;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Intercept;

/// <summary>
/// Ctrl+C while intercept holds a message: the held message is dropped (nobody approved it) and the connection closes
/// with 1001 at once, instead of its pump staying in the hook, deaf to the client's answer, until the shutdown's 5 s
/// reply wait ran out and killed it.
/// </summary>
/// <remarks>
/// The host runs on a clock whose waits of a second or more never end, and with a shutdown timeout of five minutes:
/// the stop can only finish within the test's wait if nothing falls back on the 5 s waits.
/// </remarks>
public sealed class InterceptShutdownTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AHeldMessageIsDropped_AndTheConnectionClosesWith1001_WhenTheHostStops()
    {
        var app = NewApp();
        await app.InitializeAsync();
        var stopped = false;
        try
        {
            await SetInterceptAsync(app, "~wq & ~b HOLDME");
            var (client, server, flow) = await app.ConnectAsync();
            await using var _ = client;
            var intercept = app.Services.GetRequiredService<InterceptService>();
            var resolutions = app.Services.GetRequiredService<HoldResolutions>();

            await client.SendTextAsync("HOLDME");
            await Eventually.AssertAsync(() => intercept.HeldCount == 1, "the message is held");
            var held = intercept.Snapshot()[0].Message;

            var stop = app.DisposeAsync();
            stopped = true;
            var (status, reason) = await client.CloseReceived.Task.WaitAsync(Generous);
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status);
            Assert.Equal("WsWeb is shutting down", reason);
            await AnswerCloseAsync(client);
            await stop.WaitAsync(Generous);

            Assert.True(held.Dropped);
            Assert.Equal(HoldResolutions.FlowEnded, resolutions.Get(held));
            Assert.Equal(0, intercept.HeldCount);
            Assert.DoesNotContain("HOLDME", server.Texts);
            Assert.False(flow.IsLive);
            Assert.Equal(1001, flow.WebSocket!.CloseCode);
            Assert.Null(flow.Error);   // closed, not killed
        }
        finally
        {
            if (!stopped)
            {
                await app.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AMessageCaughtOnceShutdownBegan_IsDroppedAtOnce()
    {
        var app = NewApp();
        await app.InitializeAsync();
        try
        {
            await SetInterceptAsync(app, "~wq & ~b late");
            var (client, server, flow) = await app.ConnectAsync();
            await using var _ = client;
            var intercept = app.Services.GetRequiredService<InterceptService>();

            // What RelayShutdown does first, before its 1001s: the relay still runs, and a message now caught is not held.
            app.Services.GetRequiredService<LiveRelays>().BeginShutdown();
            await client.SendTextAsync("late");
            await client.SendTextAsync("after");

            Assert.Equal("after", await client.ReceiveTextAsync());
            var late = flow.WebSocket!.Messages.Single(m => m.FromClient && m.Text == "late");
            Assert.True(late.Dropped);
            Assert.Equal(HoldResolutions.FlowEnded, app.Services.GetRequiredService<HoldResolutions>().Get(late));
            Assert.Equal(0, intercept.HeldCount);
            Assert.Equal(new[] { "after" }, server.Texts);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static WsWebApp NewApp() => new(services =>
    {
        services.AddSingleton<TimeProvider>(new LongWaitsNeverEndTimeProvider(TimeSpan.FromSeconds(1)));
        services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromMinutes(5));
    });

    private static async Task SetInterceptAsync(WsWebApp app, string filter)
    {
        using var response = await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter });
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Answers the proxy's close as a browser does (ClientWebSocket leaves that to its user).</summary>
    private static async Task AnswerCloseAsync(ClientPeer client)
    {
        try
        {
            await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Already closed.
        }
    }
}
