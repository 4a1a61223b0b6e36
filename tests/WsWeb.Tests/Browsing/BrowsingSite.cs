using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace WsWeb.Tests.Browsing;

/// <summary>
/// A small web site a browser visits through the proxy, on 127.0.0.1 over HTTP and HTTPS (its own self-signed
/// certificate; the proxy runs with --ssl-insecure here). Its page loads a script, posts JSON with fetch, opens a
/// WebSocket back to the same origin that echoes, and writes what came back into the page.
/// </summary>
internal sealed class BrowsingSite : IAsyncDisposable
{
    private const string Page = """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>browsing site</title><script src="/app.js"></script></head>
        <body><h1>browsing site</h1><pre id="log"></pre><button id="close">close</button></body></html>
        """;

    // Logs every step into #log, so the test reads what the page saw; data-state says when each step is done.
    private const string Script = """
        const log = line => document.getElementById('log').textContent += line + '\n';
        window.addEventListener('DOMContentLoaded', async () => {
          const posted = await fetch('/api/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'chromium', n: 42 }) });
          log('fetch ' + posted.status + ' ' + await posted.text());
          const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
          ws.binaryType = 'arraybuffer';
          ws.onopen = () => { ws.send('hello from chromium'); ws.send(new Uint8Array([0, 1, 2, 255])); };
          ws.onmessage = e => {
            log(typeof e.data === 'string' ? 'text ' + e.data : 'binary ' + Array.from(new Uint8Array(e.data)).join(','));
            if (typeof e.data !== 'string') document.body.dataset.state = 'echoed';
          };
          ws.onclose = e => { log('closed ' + e.code + ' ' + e.reason); document.body.dataset.state = 'closed'; };
          document.getElementById('close').onclick = () => ws.close(4001, 'bye');
        });
        """;

    private readonly WebApplication _app;

    private BrowsingSite(WebApplication app) => _app = app;

    public int HttpPort { get; private set; }

    public int HttpsPort { get; private set; }

    public static async Task<BrowsingSite> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var certificate = CreateCertificate();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate));
        });
        var app = builder.Build();
        app.UseWebSockets();
        app.MapGet("/", () => Results.Content(Page, "text/html; charset=utf-8"));
        app.MapGet("/app.js", () => Results.Content(Script, "text/javascript"));
        app.MapPost("/api/echo", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            return Results.Content($"{{\"got\":{await reader.ReadToEndAsync()}}}", "application/json");
        });
        app.Map("/ws", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await EchoAsync(socket);
        });
        await app.StartAsync();

        var ports = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Select(address => new Uri(address))
            .ToList();
        return new BrowsingSite(app)
        {
            HttpPort = ports.Single(uri => uri.Scheme == "http").Port,
            HttpsPort = ports.Single(uri => uri.Scheme == "https").Port,
        };
    }

    private static async Task EchoAsync(WebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.Empty, result.CloseStatusDescription, CancellationToken.None);
                    return;
                }

                // The page's messages are a few bytes: each arrives whole in one receive.
                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException)
        {
        }
    }

    /// <summary>A self-signed certificate for 127.0.0.1, as a development server would have.</summary>
    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=browsing site", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
