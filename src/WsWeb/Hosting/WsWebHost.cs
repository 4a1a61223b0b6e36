using Microsoft.AspNetCore.DataProtection;
using WsWeb.Core;
using WsWeb.Api;
using WsWeb.Certificates;
using WsWeb.Dashboard;
using WsWeb.Health;
using WsWeb.Hubs;
using WsWeb.Intercept;
using WsWeb.Rules;
using WsWeb.Security;
using WsWeb.Proxy;

namespace WsWeb.Hosting;

/// <summary>Builds the one Kestrel host: the proxy listener and the web listener (dashboard, REST API, hub).</summary>
public static partial class WsWebHost
{
    /// <param name="configureServices">Extra registrations (addons, test doubles of time) before the app is built.</param>
    public static WebApplication Build(ProxyOptions options, string[]? args = null, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args ?? [],
            ContentRootPath = AppContext.BaseDirectory,
        });

        builder.Services.AddWsWebProxy(options);
        builder.Services.AddWebListenerGuard(options);
        builder.Services.AddWebAccess(options);
        builder.Services.AddApiProblemDetails();
        builder.Services.AddApiDocumentation();
        builder.Services.AddFlowsHub();
        builder.Services.AddDashboard();
        // The CA refuses a data directory others may write; say so before keys/ below writes anything into it.
        WsWeb.Proxy.Certificates.CertificateAuthority.CheckDataDirectory(options.DataDirectory);

        // The dashboard's antiforgery tokens are sealed with these keys. Kept beside the CA (owner-only), not in
        // ~/.aspnet where the data directory's owner would not look; at rest they are as plain as the CA key, so
        // the framework's "no XML encryptor" warning says nothing the README does not.
        var keysDirectory = Path.Combine(options.DataDirectory, "keys");
        var keysProblem = KeysDirectoryProblem(options.DataDirectory, keysDirectory);
        var dataProtection = builder.Services.AddDataProtection().SetApplicationName("WsWeb");
        if (keysProblem is null)
        {
            dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keysDirectory));
        }
        else
        {
            // Keys that cannot be stored are no reason to refuse the proxy (a data directory mounted read-only with its
            // CA in it is a fine setup): they live in memory for this run, and only a dashboard form left open across
            // a restart notices. The framework would otherwise log each failed write as an error with its stack.
            dataProtection.UseEphemeralDataProtectionProvider();
        }

        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager", LogLevel.Error);
        configureServices?.Invoke(builder.Services);

        // Registered after the caller's addons: rules rewrite or drop first, then intercept holds what
        // is left, so a held message shows the user what the peer would really get.
        builder.Services.AddSingleton<HoldResolutions>();
        builder.Services.AddSingleton<InterceptService>();
        builder.Services.AddSingleton<InterceptSettingsStore>();
        builder.Services.AddSingleton<RuleStore>();
        builder.Services.AddSingleton<RuleFile>();
        builder.Services.AddHostedService(services => services.GetRequiredService<RuleFile>());
        builder.Services.AddSingleton<WsWeb.Recording.FlowFiles>();
        builder.Services.AddHostedService(services => services.GetRequiredService<WsWeb.Recording.FlowFiles>());
        builder.Services.AddWebSocketAddon<RulesAddon>();
        builder.Services.AddWebSocketAddon<InterceptAddon>();
        // Proxied connections are busy: skip the zero-byte wait-for-data receive before every read,
        // which costs a syscall per 4 KiB block on a relayed WebSocket.
        builder.WebHost.UseSockets(sockets => sockets.WaitForDataBeforeAllocatingBuffer = false);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.ListenProxy(options);
            kestrel.ListenWeb(options);
        });

        var app = builder.Build();
        if (keysProblem is not null)
        {
            LogKeysNotKept(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WsWebHost)), keysDirectory, keysProblem);
        }

        // When RelayShutdown begins, before it sends its 1001s: a message held by intercept would keep its pump from
        // reading the peer's answer, and the stop would wait out the 5 s reply wait (see DropAllForShutdown).
        app.Services.GetRequiredService<WsWeb.Proxy.WebSockets.LiveRelays>().Stopping.Register(
            () => app.Services.GetRequiredService<InterceptService>().DropAllForShutdown());

        // Kestrel's own "Now listening on" lines do not say which listener is which.
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var own = app.Services.GetRequiredService<WsWeb.Proxy.Listener.OwnEndpoints>();
            var proxy = string.Join(", ", own.Proxy.Select(e => e.ToString()));
            var use = options.Reverse is { } reverse
                ? $"a reverse proxy to {reverse}: point clients at it instead of the server; also an HTTP proxy"
                : "set it as the HTTP proxy of WebSocket clients and browsers";
            if (options.Upstream is { } via)
            {
                use += $"; servers are reached through the upstream proxy {via}";
            }
            LogReady(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WsWebHost)), proxy, use, string.Join(", ", own.Web.Select(e => $"http://{e}/")));
        });

        // Load or create the CA now, so a broken CA file stops the start with a message, not the first TLS client.
        app.Services.GetRequiredService<WsWeb.Proxy.Certificates.CertificateAuthority>();
        // --rfile's flows are in the store before the first client, and before --save-stream-file starts its file anew.
        app.Services.GetRequiredService<WsWeb.Recording.FlowFiles>().LoadReadFile();
        // First, always: every request on the proxy listener is forwarded here and never reaches the
        // routes below, so the API cannot be reached (or shadowed) through the proxy port.
        app.UseWsWebProxy();
        app.UseWebListenerGuard();
        app.UseWebAccess();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseHeadAsGet();
        app.UseRouting();
        app.UseSingleValuedQuery();
        app.UseDashboard();
        app.MapHealth();
        app.MapSignIn();
        app.MapFlowsApi();
        app.MapReplayApi();
        app.MapExportApi();
        app.MapInterceptApi();
        app.MapRulesApi();
        app.MapFlowsHub();
        app.MapApiDocumentation();
        app.MapCertificateDownloads();
        app.MapDashboard();
        return app;
    }

    /// <summary>
    /// Why the dashboard's data-protection keys cannot be kept in <paramref name="keysDirectory"/>, or null when they can.
    /// Tried before the host is built, while another key store can still be chosen.
    /// </summary>
    internal static string? KeysDirectoryProblem(string dataDirectory, string keysDirectory)
    {
        // A data directory that does not exist yet is made by the CA, for this user: the keys can go in it.
        if (!Directory.Exists(dataDirectory))
        {
            return null;
        }

        try
        {
            if (File.Exists(keysDirectory))
            {
                return "it is a file, not a directory";
            }

            if (!Directory.Exists(keysDirectory))
            {
                // Owner-only, as the CA's directory.
                OwnerOnly.CreateDirectory(keysDirectory);
            }

            // Writing a file is the only sure test (permissions, ACLs, a read-only mount, root squash).
            using (new FileStream(Path.Combine(keysDirectory, $".write-test-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    [LoggerMessage(2, LogLevel.Information, "WsWeb is ready. Proxy: {Proxy} ({Use}). Dashboard and REST API: {Web}")]
    private static partial void LogReady(ILogger logger, string proxy, string use, string web);

    [LoggerMessage(1, LogLevel.Warning, "The dashboard's data-protection keys cannot be kept in {KeysDirectory} ({Reason}); they are kept in memory for this run, so a dashboard form left open across a restart must be reloaded. Make the directory writable, or choose another --data-dir.")]
    private static partial void LogKeysNotKept(ILogger logger, string keysDirectory, string reason);
}
