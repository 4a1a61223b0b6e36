using System.Net;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// A replay goes through --block-list, --map-remote and --modify-headers as a proxied request does (mitmproxy's replays
/// go through its request hooks): a blocked server is not reached, a mapped one is. Real host, real echo peer.
/// </summary>
public sealed class ReplayRewriteTests : IAsyncLifetime
{
    private readonly WsWebApp _app = new(options => options with
    {
        // Only replays are touched, so the originals go where their clients sent them.
        MapRemote = ["|~replay|/echo\\?|/echo?mapped=1&"],
        ModifyHeaders = ["/~replay & ~q/X-Replayed/yes"],
        BlockList = ["|~replay & ~u blockme|403"],
    });

    public Task InitializeAsync() => _app.InitializeAsync();

    public Task DisposeAsync() => _app.DisposeAsync();

    [Fact]
    public async Task A_replay_is_mapped_and_its_headers_modified_and_a_blocked_one_never_reaches_the_server()
    {
        var (client, _, original) = await _app.ConnectAsync();
        await using (client)
        {
            var created = await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync($"/api/flows/{original.Id}/replay", new { }), HttpStatusCode.Created);
            var replay = _app.Store.Get(created.GetProperty("id").GetString()!)!;

            Assert.StartsWith("/echo?mapped=1&c=", replay.Request.Path, StringComparison.Ordinal);
            Assert.Equal("yes", replay.Request.Headers["X-Replayed"]);
            Assert.Equal(101, replay.Response!.StatusCode);
            Assert.Null(original.Request.Headers["X-Replayed"]);
        }

        var tag = "blockme-" + Guid.NewGuid().ToString("N");
        var blockedClient = await ClientPeer.ConnectAsync(_app.ProxyUri, new Uri($"ws://127.0.0.1:{_app.Echo.Port}/echo?c={tag}"), tag);
        await using (blockedClient)
        {
            var blockable = _app.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal)).Single();
            var created = await ApiAssert.JsonAsync(await _app.Api.PostJsonAsync($"/api/flows/{blockable.Id}/replay", new { }), HttpStatusCode.Created);
            var replay = _app.Store.Get(created.GetProperty("id").GetString()!)!;

            // WsWeb's 403, not the server's (the echo peer answers a handshake with 101): no connection was opened.
            Assert.Equal(403, replay.Response!.StatusCode);
            Assert.False(replay.IsLive);
            Assert.Null(replay.ServerConn.TimestampStart);
        }
    }
}
