using WsWeb.Proxy;

namespace WsWeb.Tests.Infrastructure;

/// <summary>
/// Hosts a test starts one after another (on one data directory, to see what outlives a restart) and stops at its
/// end; stopping one before is fine, as <see cref="WsWebApp.DisposeAsync"/> may run twice.
/// </summary>
internal sealed class WsWebApps : IAsyncDisposable
{
    private readonly List<WsWebApp> _apps = [];

    /// <summary>A host the test starts itself (one whose start is expected to fail), stopped at the end all the same.</summary>
    public WsWebApp Add(WsWebApp app)
    {
        _apps.Add(app);
        return app;
    }

    public async Task<WsWebApp> StartAsync(Func<ProxyOptions, ProxyOptions> configure)
    {
        var app = Add(new WsWebApp(configure));
        await app.InitializeAsync();
        return app;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }
    }
}
