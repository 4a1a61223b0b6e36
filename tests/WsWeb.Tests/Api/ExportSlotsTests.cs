using System.Net;
using System.Text.Json;
using WsWeb.Api;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// Exports are written a few at a time: each holds a thread and a temporary file as large as itself, so a burst of them
/// from scripts or browsers must not take the process's memory and threads from the proxy. Real host, real REST calls.
/// </summary>
public sealed class ExportSlotsTests : IAsyncLifetime
{
    private readonly ExportSlots _slots = new(count: 1) { Wait = TimeSpan.FromMilliseconds(200), IdleTimeout = TimeSpan.FromSeconds(1) };
    private readonly WsWebApp _app;

    public ExportSlotsTests() => _app = new WsWebApp(services => services.AddSingleton(_slots));

    public Task InitializeAsync() => _app.InitializeAsync();

    public Task DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task An_export_while_every_slot_is_busy_is_a_429_with_retry_after_and_goes_through_once_one_is_free()
    {
        var (client, _, flow) = await _app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("exported");
            await client.ReceiveTextAsync();
        }

        // Another export holds the one slot, as a long one being written would.
        await _slots.Gate.WaitAsync();
        try
        {
            foreach (var path in new[] { "/api/flows/export?format=har", $"/api/flows/{flow.Id}/export" })
            {
                using var busy = await _app.Api.GetAsync(new Uri(path, UriKind.Relative));
                Assert.Equal(HttpStatusCode.TooManyRequests, busy.StatusCode);
                Assert.Equal("application/problem+json", busy.Content.Headers.ContentType?.MediaType);
                Assert.Equal(TimeSpan.FromSeconds(1), busy.Headers.RetryAfter?.Delta);
                using var problem = JsonDocument.Parse(await busy.Content.ReadAsStringAsync());
                Assert.Contains("at most 1 export at a time", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
        }
        finally
        {
            _slots.Gate.Release();
        }

        using var done = await _app.Api.GetAsync(new Uri($"/api/flows/{flow.Id}/export", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        Assert.Contains("exported", await done.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await Eventually.AssertAsync(() => _slots.Gate.CurrentCount == 1, "the download freed its slot");
    }

    [Fact]
    public async Task A_download_that_takes_nothing_is_cut_and_frees_its_slot()
    {
        // Megabytes of capture, so the export outgrows what the sockets' buffers take without the client reading.
        var (client, _, flow) = await _app.ConnectAsync();
        await using (client)
        {
            var chunk = new string('d', 900 * 1024);
            for (var i = 0; i < 10; i++)
            {
                await client.SendTextAsync(chunk);
                await client.ReceiveTextAsync();
            }
        }

        using var stalled = new System.Net.Sockets.TcpClient { ReceiveBufferSize = 4096 };
        await stalled.ConnectAsync(IPAddress.Loopback, _app.WebPort);
        var stream = stalled.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET /api/flows/{flow.Id}/export HTTP/1.1\r\nHost: 127.0.0.1:{_app.WebPort}\r\n\r\n"));

        // It holds the one slot while it is sent, and loses it (and its connection) once it has taken nothing for 1 s.
        await Eventually.AssertAsync(() => _slots.Gate.CurrentCount == 0, "the stalled download holds the slot");
        await Eventually.AssertAsync(() => _slots.Gate.CurrentCount == 1, "the stalled download was cut", TimeSpan.FromSeconds(15));
        using var next = await _app.Api.GetAsync(new Uri($"/api/flows/{flow.Id}/export?format=har", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }
}
