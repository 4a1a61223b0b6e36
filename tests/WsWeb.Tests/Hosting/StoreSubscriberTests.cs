using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>A flow store subscriber that throws is logged, and the relay and the other subscribers go on.</summary>
public sealed class StoreSubscriberTests
{
    [Fact]
    public async Task A_throwing_subscriber_is_logged_as_an_error_and_traffic_and_the_api_go_on()
    {
        var log = new RecordingLoggerProvider();
        var app = new WsWebApp(services => services.AddLogging(logging => logging.AddProvider(log)));
        await app.InitializeAsync();
        try
        {
            await RelayPastABrokenSubscriberAsync(app, log);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static async Task RelayPastABrokenSubscriberAsync(WsWebApp app, RecordingLoggerProvider log)
    {
        using var broken = app.Store.Subscribe(e =>
        {
            if (e.Kind == FlowEventKind.MessageAdded)
            {
                throw new InvalidOperationException("subscriber bug");
            }
        });

        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("still relayed");
            Assert.Equal("still relayed", await client.ReceiveTextAsync());
        }

        await Eventually.AssertAsync(() => log.Entries.Any(e => e.Level == LogLevel.Error && e.Category == typeof(FlowStore).FullName && e.Exception?.Message == "subscriber bug"),
            "the failure is logged with its exception");
        var messages = await ApiAssert.JsonAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/messages"));
        Assert.Equal(2, messages.GetProperty("messages").GetArrayLength());
    }
}
