using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Addons;
using WsWeb.Proxy.Certificates;
using WsWeb.Proxy.Forwarding;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy;

public static class ProxyServiceCollectionExtensions
{
    /// <summary>Registers the proxy engine: flow store, CA, upstream connector, relay and addon pipeline.</summary>
    public static IServiceCollection AddWsWebProxy(this IServiceCollection services, ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton(sp =>
        {
            // A subscriber that throws (the hub's router, the flow-file writer) misses that event and goes on; the log is
            // where "the dashboard stopped updating" can be traced back to.
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger<FlowStore>();
            return new FlowStore(new FlowStoreOptions
            {
                MaxFlows = options.MaxFlows,
                MaxMessagesPerFlow = options.MaxMessagesPerFlow,
                MaxBytesPerFlow = options.MaxBytesPerFlow,
                MaxTotalBytes = options.MaxTotalBytes,
            })
            {
                SubscriberFailed = ex => FlowStoreLog.SubscriberFailed(logger, ex),
            };
        });
        services.AddSingleton<OwnEndpoints>();
        services.AddSingleton(new ClientAddressPolicy(options));
        services.AddSingleton(new HostPassthrough(options));
        services.AddSingleton(ConnectionLimits.For(options, ConnectionLimits.ReadOpenFileLimit()));
        services.AddSingleton<ConnectionLimiters>();
        services.AddSingleton(sp => CertificateAuthority.LoadOrCreate(
            options.DataDirectory,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<CertificateAuthority>()));
        services.AddSingleton(sp => new UpstreamTlsPolicy(
            options.SslInsecure,
            options.UpstreamTrustBundle,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<UpstreamTlsPolicy>()));
        services.AddSingleton<UpstreamConnector>();
        services.AddSingleton<AddonPipeline>();
        services.AddSingleton<LiveRelays>();
        services.AddSingleton<IWebSocketControl>(sp => sp.GetRequiredService<LiveRelays>());
        services.AddSingleton<WebSocketForwarder>();
        services.AddSingleton<FlowReplay>();
        services.AddSingleton<ProxyRequestHandler>();
        services.AddSingleton<Rewriting.RequestRewrites>();
        services.AddSingleton<TlsHandshakeLog>();
        services.AddSingleton<ProxyConnectionMiddleware>();
        services.AddSingleton<ProxyRequestGate>();
        services.AddSingleton<KestrelRefusals>();

        // Bind only ProxyEndPoint listeners (ListenProxy) and WebEndPoint ones (ListenWeb); any other stays on Kestrel's
        // sockets. Kestrel asks the factories registered last first, and the host builder registers its socket
        // transport before these (a slim builder's UseKestrel adds it only if no factory is registered yet).
        services.AddSingleton<IConnectionListenerFactory, ProxyTransportFactory>();
        services.AddSingleton<IConnectionListenerFactory, WebTransportFactory>();
        services.AddHostedService<RelayShutdown>();
        return services;
    }

    /// <summary>Adds a C# addon; addons run in the order they were added.</summary>
    public static IServiceCollection AddWebSocketAddon<TAddon>(this IServiceCollection services)
        where TAddon : class, IWebSocketAddon => services.AddSingleton<IWebSocketAddon, TAddon>();

    public static IServiceCollection AddWebSocketAddon(this IServiceCollection services, IWebSocketAddon addon) =>
        services.AddSingleton(addon);

    /// <summary>
    /// Binds the proxy listener with the CONNECT/TLS connection middleware. Only HTTP/1.1: WebSockets
    /// and CONNECT are HTTP/1.1 things, and the proxy must see every request in plain form.
    /// </summary>
    public static void ListenProxy(this KestrelServerOptions kestrel, ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(options);

        // Absolute-form requests carry the target in the request line; Kestrel must take it over the Host header.
        kestrel.AllowHostHeaderOverride = true;

        // Header bytes pass through unchanged (UTF-8 or not), and responses carry no Server header the upstream did not send.
        // Not Content-Length: Kestrel decodes a custom-encoded one into a fixed 20-character buffer, and a longer value
        // (leading zeros are valid) threw and closed the connection without an answer.
        kestrel.RequestHeaderEncodingSelector = static name =>
            string.Equals(name, Microsoft.Net.Http.Headers.HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase) ? null : System.Text.Encoding.Latin1;
        kestrel.ResponseHeaderEncodingSelector = static _ => System.Text.Encoding.Latin1;
        kestrel.AddServerHeader = false;
        // Heads as large as real clients send (a 9 KB URL, a 40 KB Cookie, 101 fields) are forwarded, as mitmproxy does,
        // within bounds like those of the response heads read from servers. Kestrel's limits are the server's, so the
        // web listener keeps Kestrel's defaults through RequestHeadLimits.RefuseOnWebListener.
        kestrel.Limits.MaxRequestLineSize = RequestHeadLimits.ProxyMaxRequestLineSize;
        kestrel.Limits.MaxRequestHeadersTotalSize = RequestHeadLimits.ProxyMaxRequestHeadersTotalSize;
        kestrel.Limits.MaxRequestHeaderCount = RequestHeadLimits.ProxyMaxRequestHeaderCount;
        kestrel.Limits.MinRequestBodyDataRate = null;
        kestrel.Limits.MinResponseDataRate = null;
        Action<ListenOptions> configure = listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            LimitConnections(listen, listen.ApplicationServices.GetRequiredService<ConnectionLimiters>().Proxy);
            var middleware = listen.ApplicationServices.GetRequiredService<ProxyConnectionMiddleware>();
            listen.Use(next => connection => middleware.OnConnectionAsync(connection, next));
        };
        // Our own transport (ProxyTransportFactory): the relay may use the socket once a WebSocket is upgraded.
        Listen(kestrel, options.ListenHost, options.ListenPort, static (address, port) => new ProxyEndPoint(address, port), configure);
    }

    /// <summary>
    /// Binds the web listener under its connection limit (see <see cref="ConnectionLimits"/>); the host maps what it serves.
    /// </summary>
    public static void ListenWeb(this KestrelServerOptions kestrel, ProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(options);
        Listen(kestrel, options.WebHost, options.WebPort, static (address, port) => new WebEndPoint(address, port), listen =>
            LimitConnections(listen, listen.ApplicationServices.GetRequiredService<ConnectionLimiters>().Web));
    }

    /// <summary>The limiter goes first: a connection over the limit costs its accept and nothing more.</summary>
    private static void LimitConnections(ListenOptions listen, ConnectionLimiter? limiter)
    {
        if (limiter is not null)
        {
            listen.Use(next => connection => limiter.OnConnectionAsync(connection, next));
        }
    }

    /// <summary>
    /// Binds a listener on an IP literal, or for "localhost" on 127.0.0.1 and, where this machine has it, ::1 (only
    /// 127.0.0.1 for port 0: two loopbacks could not share one port the system picks).
    /// </summary>
    /// <param name="endpoint">Makes the endpoint, of the type that selects the listener's transport.</param>
    private static void Listen(KestrelServerOptions kestrel, string host, int port, Func<IPAddress, int, IPEndPoint> endpoint, Action<ListenOptions> configure)
    {
        if (!string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            kestrel.Listen(endpoint(IPAddress.Parse(host), port), configure);
            return;
        }

        kestrel.Listen(endpoint(IPAddress.Loopback, port), configure);
        if (port != 0 && HasIPv6Loopback())
        {
            kestrel.Listen(endpoint(IPAddress.IPv6Loopback, port), configure);
        }
    }

    /// <summary>Whether ::1 can be bound here (a container may have IPv6 switched off while the system supports it).</summary>
    private static bool HasIPv6Loopback()
    {
        if (!Socket.OSSupportsIPv6)
        {
            return false;
        }

        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Puts the proxy in front of the request pipeline: requests from the proxy listener are forwarded
    /// and never reach the dashboard's endpoints; requests on other listeners pass through.
    /// </summary>
    public static WebApplication UseWsWebProxy(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var gate = app.Services.GetRequiredService<ProxyRequestGate>();
        var handler = app.Services.GetRequiredService<ProxyRequestHandler>();
        app.Use((context, next) => gate.InvokeAsync(context, next));
        app.Use((context, next) => handler.InvokeAsync(context, next));

        // Kestrel's own refusals on the proxy listener get a body saying why (see KestrelRefusals).
        if (app.Services.GetService<DiagnosticListener>() is { } diagnostics)
        {
            var subscription = diagnostics.Subscribe(app.Services.GetRequiredService<KestrelRefusals>(), KestrelRefusals.IsEnabled);
            app.Lifetime.ApplicationStopped.Register(subscription.Dispose);
        }

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            app.Services.GetRequiredService<OwnEndpoints>().Set(ParseEndpoints(addresses));
            app.Services.GetRequiredService<ClientAddressPolicy>().LogExposure(
                app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ClientAddressPolicy>(),
                app.Services.GetRequiredService<ProxyOptions>().ListenHost);
            app.Services.GetRequiredService<ConnectionLimiters>().LogLimits();
        });
        return app;
    }

    internal static IEnumerable<IPEndPoint> ParseEndpoints(IEnumerable<string> addresses)
    {
        foreach (var address in addresses)
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri))
            {
                continue;
            }

            if (uri.Host == "localhost")
            {
                yield return new IPEndPoint(IPAddress.Loopback, uri.Port);
                yield return new IPEndPoint(IPAddress.IPv6Loopback, uri.Port);
            }
            else if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            {
                yield return new IPEndPoint(ip, uri.Port);
            }
        }
    }
}

internal static partial class FlowStoreLog
{
    [LoggerMessage(1, LogLevel.Error, "A flow store subscriber failed on an event; it missed that event, and the others got it.")]
    public static partial void SubscriberFailed(ILogger logger, Exception exception);
}
