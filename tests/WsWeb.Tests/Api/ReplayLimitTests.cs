using System.Net;
using WsWeb.Proxy.Forwarding;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// Replays live at once are bounded: each holds a server connection outside the proxy listener's limit, so a script
/// replaying in a loop could otherwise spend the file descriptors the proxy needs. Real replays to a real echo peer.
/// </summary>
public sealed class ReplayLimitTests : IAsyncLifetime
{
    private readonly WsWebApp _app = new();

    public Task InitializeAsync() => _app.InitializeAsync();

    public Task DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task Past_the_live_replay_limit_a_replay_is_a_429_until_one_ends()
    {
        var (client, _, original) = await _app.ConnectAsync();
        await using (client)
        {
            var replays = new List<string>();
            for (var i = 0; i < FlowReplay.MaxLiveReplays; i++)
            {
                var created = await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
                replays.Add(created.GetProperty("id").GetString()!);
            }

            var refused = await ApiAssert.ProblemAsync(await _app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.TooManyRequests);
            Assert.Contains($"{FlowReplay.MaxLiveReplays} replays are live", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Equal(FlowReplay.MaxLiveReplays, _app.Store.Query(f => f.IsReplay is not null).Count);

            // One killed, one more may go.
            using var kill = await _app.Api.PostAsync(new Uri($"/api/flows/{replays[0]}/kill", UriKind.Relative), null);
            Assert.True(kill.IsSuccessStatusCode);
            await Eventually.AssertAsync(() => !_app.Store.Get(replays[0])!.IsLive, "the killed replay ended");
            await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
        }
    }
}
