using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using WsWeb.Proxy.Listener;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>
/// The real entry point (command line, configuration, host) booted by WebApplicationFactory on real
/// Kestrel: what `dotnet run --project src/WsWeb` starts, with ports and data directory from the
/// environment as a user would set them.
/// </summary>
[Collection(nameof(ProgramTests))]
public sealed class ProgramTests : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-program-" + Guid.NewGuid().ToString("N"));
    private WebApplicationFactory<Program> _factory = null!;

    public Task InitializeAsync()
    {
        // The same variables a user would export; read by the command line when the entry point runs.
        Environment.SetEnvironmentVariable("WSWEB_LISTEN_PORT", "0");
        Environment.SetEnvironmentVariable("WSWEB_WEB_PORT", "0");
        Environment.SetEnvironmentVariable("WSWEB_DATA_DIR", _dataDirectory);
        _factory = new WebApplicationFactory<Program>();
        _factory.UseKestrel();
        _factory.StartServer();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _factory.DisposeAsync();
        Environment.SetEnvironmentVariable("WSWEB_LISTEN_PORT", null);
        Environment.SetEnvironmentVariable("WSWEB_WEB_PORT", null);
        Environment.SetEnvironmentVariable("WSWEB_DATA_DIR", null);
        Directory.Delete(_dataDirectory, recursive: true);
    }

    [Fact]
    public async Task TheEntryPointServesTheApiAndProxiesWebSockets()
    {
        var endpoints = _factory.Services.GetRequiredService<OwnEndpoints>().Endpoints;
        var proxyPort = endpoints[0].Port;
        var webPort = endpoints[1].Port;
        using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{webPort}") };
        Assert.True(File.Exists(Path.Combine(_dataDirectory, "wsweb-ca.pem")), "the CA was created in the configured data directory");

        await using var echo = await EchoPeer.StartAsync();
        await using var client = await ClientPeer.ConnectAsync(new Uri($"http://127.0.0.1:{proxyPort}"), new Uri($"ws://127.0.0.1:{echo.Port}/echo?c=program"), "program");
        await client.SendTextAsync("through the real entry point");
        Assert.Equal("through the real entry point", await client.ReceiveTextAsync());

        using var flows = JsonDocument.Parse(await api.GetStringAsync(new Uri("/api/flows?filter=~websocket", UriKind.Relative)));
        var flow = Assert.Single(flows.RootElement.GetProperty("flows").EnumerateArray());
        Assert.Contains("/echo?c=program", flow.GetProperty("url").GetString(), StringComparison.Ordinal);
        using var health = await api.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
