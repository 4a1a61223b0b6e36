using System.Net;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// Injected content waiting to go out toward a peer is bounded (twice the maximum message size, 2 MiB here): a script
/// injecting with ?wait=0 toward a peer that cannot take it gets a 429 instead of growing the process without end.
/// Real host; the queue is held up behind a message intercept holds, as behind a peer that stopped reading.
/// </summary>
public sealed class InjectionQueueTests : IAsyncLifetime
{
    private readonly WsWebApp _app = new();

    public Task InitializeAsync() => _app.InitializeAsync();

    public Task DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task Past_the_queue_bound_an_injection_is_a_429_and_once_the_queue_drains_injections_go_again()
    {
        var (held, _, flowId, _) = (await _app.HoldOnePerFlowAsync("~ws", ["queue"], _ => ["echo me"]))[0];
        await using var client = held;
        var megabyte = Convert.ToBase64String(new byte[1024 * 1024]);

        var accepted = 0;
        HttpStatusCode? refusedAt = null;
        string? detail = null;
        for (var i = 0; i < 4 && refusedAt is null; i++)
        {
            using var response = await _app.Api.PostJsonAsync($"/api/flows/{flowId}/messages?wait=0", new { toClient = true, type = "binary", content = megabyte, encoding = "base64" });
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                refusedAt = response.StatusCode;
                detail = (await ApiAssert.ProblemAsync(response, HttpStatusCode.TooManyRequests)).GetProperty("detail").GetString();
            }
            else
            {
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                accepted++;
            }
        }

        Assert.NotNull(refusedAt);
        Assert.Contains("at most 2097152 may wait", detail, StringComparison.Ordinal);

        // The held echo goes, the queue behind it drains, and the client gets every accepted injection (intercept is
        // off first: injected messages pass through intercept too, and ~ws would hold them).
        using var off = await _app.Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative));
        using var release = await _app.Api.PostAsync(new Uri("/api/intercept/held/release", UriKind.Relative), null);
        Assert.True(release.IsSuccessStatusCode, await release.Content.ReadAsStringAsync());
        Assert.Equal("echo me", await client.ReceiveTextAsync());
        for (var i = 0; i < accepted; i++)
        {
            Assert.Equal(1024 * 1024, (await client.ReceiveAsync()).Data.Length);
        }

        using var again = await _app.Api.PostJsonAsync($"/api/flows/{flowId}/messages", new { toClient = true, type = "text", content = "after" });
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
    }
}
