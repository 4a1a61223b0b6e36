using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>The real proxy engine on Kestrel, on a free loopback port, with a CA in a temp directory.</summary>
internal sealed class ProxyServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _dataDirectory;

    private ProxyServer(WebApplication app, string dataDirectory)
    {
        _app = app;
        _dataDirectory = dataDirectory;
    }

    public int ProxyPort { get; private set; }

    public int WebPort { get; private set; }

    public Uri ProxyUri => new($"http://127.0.0.1:{ProxyPort}");

    public IServiceProvider Services => _app.Services;

    public FlowStore Store => Services.GetRequiredService<FlowStore>();

    public IWebSocketControl Control => Services.GetRequiredService<IWebSocketControl>();

    public X509Certificate2 CaCertificate => Services.GetRequiredService<CertificateAuthority>().Certificate;

    public static async Task<ProxyServer> StartAsync(Func<ProxyOptions, ProxyOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-test-" + Guid.NewGuid().ToString("N"));
        var options = new ProxyOptions { ListenPort = 0, WebPort = 0, DataDirectory = dataDirectory, SslInsecure = true };
        options = configure?.Invoke(options) ?? options;

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddWsWebProxy(options);
        services?.Invoke(builder.Services);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.ListenProxy(options);
            kestrel.ListenWeb(options);
        });
        var app = builder.Build();
        app.UseWsWebProxy();
        app.MapGet("/healthz", () => "ok");
        await app.StartAsync();

        var server = new ProxyServer(app, dataDirectory);
        var endpoints = app.Services.GetRequiredService<OwnEndpoints>().Endpoints;
        server.ProxyPort = endpoints[0].Port;
        server.WebPort = endpoints[1].Port;
        return server;
    }

    /// <summary>Waits until a flow matching <paramref name="predicate"/> is stored.</summary>
    public async Task<HttpFlow> WaitForFlowAsync(Func<HttpFlow, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < deadline)
        {
            var flow = Store.Query(predicate, take: 1).FirstOrDefault();
            if (flow is not null)
            {
                return flow;
            }

            await Task.Delay(10);
        }

        throw new TimeoutException("No matching flow was recorded.");
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
