using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>An open dashboard tab must not hold up Ctrl+C: the host closes hub connections when it stops.</summary>
public sealed class HubShutdownTests
{
    [Fact]
    public async Task Stopping_closes_dashboard_connections_instead_of_waiting_out_the_shutdown_timeout()
    {
        var app = new WsWebApp();
        await app.InitializeAsync();
        await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
        await hub.InvokeAsync("SubscribeFlows");

        var clock = Stopwatch.StartNew();
        await app.DisposeAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"stopping took {clock.Elapsed}");
        await hub.Closed.Task.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_tab_that_reconnects_while_the_host_stops_is_closed_at_once()
    {
        // A browser tab reconnects the moment its connection drops, on a kept-alive HTTP connection the stopping
        // server still serves; that new connection used to hold the stop for the whole shutdown timeout (30 s).
        // Here the stop is only signalled (the host was started, not run), so the listener stays up for the check.
        var app = new WsWebApp();
        await app.InitializeAsync();
        try
        {
            app.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();

            await using var hub = await HubTestClient.ConnectAsync(app.WebPort);
            await hub.Closed.Task.WaitAsync(TimeSpan.FromSeconds(5));
        }
        finally
        {
            await app.DisposeAsync();
        }
    }
}
