using System.Net;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// Recorded HTTP bodies are content like WebSocket messages: they count toward the store's byte budget, so a stream of
/// large POSTs and answers cannot grow the process past it (1 MiB each way × 4000 flows was 10.9 GB before).
/// </summary>
public sealed class BodyRetentionTests
{
    [Fact]
    public async Task LargeBodiesThroughTheProxy_StayWithinTheContentBudget()
    {
        const int MiB = 1024 * 1024;
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxTotalBytes = 4 * MiB });
        using var client = new HttpClient(new HttpClientHandler { Proxy = new WebProxy(proxy.ProxyUri), UseProxy = true });

        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var path = $"/echo?n={i}";
            using var response = await client.PostAsync(upstream.Url(path), new ByteArrayContent(new byte[MiB]));
            Assert.Equal(MiB, (await response.Content.ReadAsByteArrayAsync()).Length);
            var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == path && !f.IsLive);
            Assert.Equal(MiB, flow.Request.Content!.Length);
            Assert.Equal(MiB, flow.Response!.Content!.Length);
            ids.Add(flow.Id);
        }

        // Six flows of 2 MiB each against 4 MiB: the oldest made room, and what is kept is what is counted.
        var kept = proxy.Store.Snapshot();
        Assert.True(proxy.Store.RetainedBytes <= 4 * MiB, $"{proxy.Store.RetainedBytes} bytes retained");
        Assert.Equal(kept.Sum(f => (long)(f.Request.Content?.Length ?? 0) + (f.Response?.Content?.Length ?? 0)), proxy.Store.RetainedBytes);
        Assert.Null(proxy.Store.Get(ids[0]));
        Assert.NotNull(proxy.Store.Get(ids[^1]));
    }
}
