using System.Net;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Tests.Infrastructure;

namespace WsWeb.Proxy.Tests.Forwarding;

/// <summary>
/// A captured flow is live from the moment the store holds it. The store evicts only finished flows to make room (for
/// --max-flows, the byte budget, an import), and it decides under its lock by <see cref="HttpFlow.IsLive"/>: a capture
/// added first and marked live after could be taken for finished in between, and evicted while its request was still
/// going out.
/// </summary>
public sealed class CaptureLivenessTests
{
    [Fact]
    public async Task AForwardedRequestsFlowIsLiveWhenTheStoreFirstHoldsIt_SoAnImportCannotEvictIt()
    {
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { MaxFlows = 1 });
        using var client = new HttpClient(new HttpClientHandler { Proxy = new WebProxy(proxy.ProxyUri), UseProxy = true });

        bool? liveWhenStarted = null;
        AddOutcome? importOutcome = null;
        var evicted = new List<HttpFlow>();
        using var subscription = proxy.Store.Subscribe(e =>
        {
            if (e.Kind != FlowEventKind.FlowStarted || e.Flow.IsImported || e.Flow.Request.Path != "/hello")
            {
                return;
            }

            // Subscribers run synchronously inside Add, so this is the store's first sight of the capture: an import
            // arriving now, with the store full (MaxFlows 1), may only take a finished flow.
            liveWhenStarted = e.Flow.IsLive;
            var imported = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "example.com", Port = 80, Path = "/imported" }, 1) { IsImported = true };
            importOutcome = proxy.Store.TryAddFinished(imported, evicted);
        });

        using var response = await client.GetAsync(upstream.Url("/hello"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.True(liveWhenStarted, "the capture was not live when the store first held it");
        Assert.Equal(AddOutcome.NoRoom, importOutcome);
        Assert.Empty(evicted);
        var flow = await proxy.WaitForFlowAsync(f => f.Request.Path == "/hello" && !f.IsLive);
        Assert.NotNull(proxy.Store.Get(flow.Id));
        Assert.Equal(200, flow.Response!.StatusCode);
    }
}
