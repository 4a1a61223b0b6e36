using WsWeb.Core.Flows;
using WsWeb.Hosting;
using WsWeb.Proxy;
using WsWeb.Proxy.Listener;

namespace WsWeb.Bench;

/// <summary>
/// The real WsWeb host (<see cref="WsWebHost.Build"/>: proxy listener with the connection middleware,
/// web listener, flow store with capture on) on free loopback ports, a CA in a temp directory, logging off.
/// </summary>
internal sealed class ProxyHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _dataDirectory;

    private ProxyHost(WebApplication app, string dataDirectory, int port)
    {
        _app = app;
        _dataDirectory = dataDirectory;
        Port = port;
    }

    public int Port { get; }

    public Uri ProxyUri => new($"http://127.0.0.1:{Port}");

    public FlowStore Store => _app.Services.GetRequiredService<FlowStore>();

    public ProxyOptions Options => _app.Services.GetRequiredService<ProxyOptions>();

    public static async Task<ProxyHost> StartAsync(int? maxMessagesPerFlow = null)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-bench-" + Guid.NewGuid().ToString("N"));
        var options = new ProxyOptions { ListenPort = 0, WebPort = 0, DataDirectory = dataDirectory, SslInsecure = true };
        if (maxMessagesPerFlow is { } retain)
        {
            options = options with { MaxMessagesPerFlow = retain };
        }
        var app = WsWebHost.Build(options, [], services => services.AddLogging(logging => logging.ClearProviders()));
        await app.StartAsync();
        var endpoints = app.Services.GetRequiredService<OwnEndpoints>().Endpoints;
        return new ProxyHost(app, dataDirectory, endpoints[0].Port);
    }

    /// <summary>Flows and messages recorded so far.</summary>
    public (int Flows, int WebSocketFlows, long Messages, long Retained) Recorded()
    {
        var flows = Store.Snapshot();
        long messages = 0, retained = 0;
        var webSocketFlows = 0;
        foreach (var flow in flows)
        {
            if (flow.WebSocket is { } ws)
            {
                webSocketFlows++;
                messages += ws.TotalCount;
                retained += ws.Messages.Count;
            }
        }

        return (flows.Count, webSocketFlows, messages, retained);
    }

    /// <summary>Forgets the recorded flows so that one scenario's captured data does not weigh on the next one's GC.</summary>
    public void ClearFlows()
    {
        foreach (var flow in Store.Snapshot())
        {
            Store.Remove(flow.Id);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
