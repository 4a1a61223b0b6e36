using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using WsWeb.Core.Flows;
using WsWeb.Hosting;
using WsWeb.Proxy;

namespace WsWeb.Tests.Infrastructure;

/// <summary>
/// The real WsWeb host (<see cref="WsWebHost.Build"/>: the same code Program.cs runs) on two free loopback
/// ports, an echo peer behind it, and an HttpClient on the web listener. One per test class.
/// </summary>
public sealed class WsWebApp : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-api-test-" + Guid.NewGuid().ToString("N"));
    private readonly Action<IServiceCollection>? _configureServices;
    private readonly Func<ProxyOptions, ProxyOptions>? _configureOptions;
    private WebApplication? _app;
    private EchoPeer? _echo;

    public WsWebApp()
    {
    }

    /// <summary>A host with extra registrations (e.g. other hub bounds), for fixtures that wrap this one.</summary>
    internal WsWebApp(Action<IServiceCollection> configureServices) => _configureServices = configureServices;

    /// <summary>A host with other proxy options (e.g. a larger maximum message size).</summary>
    internal WsWebApp(Func<ProxyOptions, ProxyOptions> configureOptions) => _configureOptions = configureOptions;

    public int ProxyPort { get; private set; }

    public int WebPort { get; private set; }

    public Uri ProxyUri => new($"http://127.0.0.1:{ProxyPort}");

    public HttpClient Api { get; private set; } = null!;

    public IServiceProvider Services => _app!.Services;

    public FlowStore Store => Services.GetRequiredService<FlowStore>();

    internal EchoPeer Echo => _echo!;

    public static ProxyOptions Options(string dataDirectory) =>
        new() { ListenPort = 0, WebPort = 0, DataDirectory = dataDirectory, SslInsecure = true, MaxMessageSize = 1024 * 1024 };

    public async Task InitializeAsync()
    {
        _echo = await EchoPeer.StartAsync();
        var options = Options(_dataDirectory);
        _app = WsWebHost.Build(_configureOptions?.Invoke(options) ?? options, configureServices: services =>
        {
            services.AddLogging(logging => logging.ClearProviders());
            _configureServices?.Invoke(services);
        });
        await _app.StartAsync();

        // Kestrel reports addresses in the order the listeners were bound: the proxy first, then the web listener.
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        ProxyPort = new Uri(addresses[0]).Port;
        WebPort = new Uri(addresses[1]).Port;
        Api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{WebPort}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Opens a WebSocket through the proxy to the echo peer and returns it with its (live) flow.</summary>
    internal async Task<(ClientPeer Client, PeerConnection Server, HttpFlow Flow)> ConnectAsync()
    {
        var tag = Guid.NewGuid().ToString("N");
        var client = await ClientPeer.ConnectAsync(ProxyUri, new Uri($"ws://127.0.0.1:{Echo.Port}/echo?c={tag}"), tag);
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal) && f.IsWebSocket && f.IsLive, take: 1).FirstOrDefault()) is not null, "the flow is live");
        await Eventually.AssertAsync(() => Echo.Connections.ContainsKey(tag), "the echo peer accepted");
        return (client, Echo.Connections[tag], flow!);
    }

    /// <summary>Clears intercept and rules so each test starts from a plain proxy.</summary>
    public async Task ResetAsync()
    {
        await Api.DeleteAsync(new Uri("/api/intercept", UriKind.Relative));
        var rules = await Api.GetFromJsonAsync<List<System.Text.Json.JsonElement>>(new Uri("/api/rules", UriKind.Relative));
        foreach (var rule in rules ?? [])
        {
            await Api.DeleteAsync(new Uri($"/api/rules/{rule.GetProperty("id").GetString()}", UriKind.Relative));
        }
    }

    /// <summary>Drops every held message, for tests that count them: none may be left from another test.</summary>
    public void DropAllHeld()
    {
        var intercept = Services.GetRequiredService<WsWeb.Intercept.InterceptService>();
        foreach (var held in intercept.Snapshot())
        {
            intercept.TryResolve(held, drop: true, newContent: null, WsWeb.Intercept.HoldResolutions.Dropped);
        }
    }

    /// <summary>
    /// <see cref="ResetAsync"/>, and <see cref="DropAllHeld"/> for tests that count held messages: a message a previous
    /// test left held (its flow's teardown is asynchronous) would be counted.
    /// </summary>
    public async Task ResetAndDropHeldAsync()
    {
        await ResetAsync();
        DropAllHeld();
    }

    /// <summary>
    /// Turns intercept on with <paramref name="filter"/> and opens a WebSocket per name in <paramref name="names"/>, each
    /// sending what <paramref name="sends"/> gives for its name; waits until each has a message held.
    /// </summary>
    internal async Task<(ClientPeer Client, PeerConnection Server, string FlowId, long Index)[]> HoldOnePerFlowAsync(
        string filter, string[] names, Func<string, string[]> sends)
    {
        using var intercept = await Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter });
        Assert.Equal(System.Net.HttpStatusCode.OK, intercept.StatusCode);
        var flows = new List<(ClientPeer, PeerConnection, string, long)>();
        foreach (var name in names)
        {
            var (client, server, flow) = await ConnectAsync();
            foreach (var text in sends(name))
            {
                await client.SendTextAsync(text);
            }

            flows.Add((client, server, flow.Id, await HeldIndexAsync(flow.Id)));
        }

        return [.. flows];
    }

    /// <summary>Waits until a message of <paramref name="flowId"/> is held by intercept; its index.</summary>
    public async Task<long> HeldIndexAsync(string flowId)
    {
        var intercept = Services.GetRequiredService<WsWeb.Intercept.InterceptService>();
        WsWeb.Intercept.HeldMessage? held = null;
        await Eventually.AssertAsync(() => (held = intercept.Snapshot().FirstOrDefault(h => h.Flow.Id == flowId)) is not null, "a message of the flow is held");
        return held!.Message.Index;
    }

    public async Task DisposeAsync()
    {
        Api?.Dispose();
        // Idempotent: a test may stop the host itself, and its fixture disposes it again.
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }

        if (_echo is not null)
        {
            await _echo.DisposeAsync();
            _echo = null;
        }

        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
