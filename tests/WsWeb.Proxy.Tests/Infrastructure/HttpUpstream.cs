using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>
/// A plain HTTP upstream (Kestrel, optionally TLS): GET /hello, POST /echo (body back), GET /stream
/// (chunked: a first chunk, then the second only after <see cref="ReleaseStream"/>), GET /big (256 MiB unless aborted).
/// </summary>
internal sealed class HttpUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _streamGate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HttpUpstream(WebApplication app) => _app = app;

    public int Port { get; private set; }

    /// <summary>Upstream connection ids, one per request, in arrival order.</summary>
    public ConcurrentQueue<string> ConnectionIds { get; } = new();

    public Uri Url(string path, string scheme = "http", string host = "127.0.0.1") => new($"{scheme}://{host}:{Port}{path}");

    public void ReleaseStream() => _streamGate.TrySetResult();


    /// <summary>An HTTPS upstream for <c>localhost</c>, its certificate from a CA of its own that nothing trusts.</summary>
    public static async Task<HttpUpstream> StartHttpsAsync()
    {
        using var upstreamCa = WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(Path.Combine(Path.GetTempPath(), "wsweb-up-" + Guid.NewGuid().ToString("N")), TimeProvider.System);
        return await StartAsync(upstreamCa.IssueLeaf("localhost"));
    }

    public static async Task<HttpUpstream> StartAsync(X509Certificate2? tlsCertificate = null)
    {
        var app = LoopbackWebApp.CreateBuilder(tlsCertificate).Build();
        HttpUpstream? upstream = null;
        app.Use(async (context, next) =>
        {
            upstream!.ConnectionIds.Enqueue(context.Connection.Id);
            await next(context);
        });
        app.MapGet("/hello", (HttpContext context) =>
        {
            context.Response.Headers["X-Upstream"] = "yes";
            return Results.Text("hello world");
        });
        app.MapPost("/echo", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            context.Response.ContentType = context.Request.ContentType ?? "application/octet-stream";
            context.Response.Headers["X-Received-Length"] = body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await context.Response.Body.WriteAsync(body.ToArray(), context.RequestAborted);
        });
        app.MapGet("/stream", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("first chunk\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await upstream!._streamGate.Task.WaitAsync(TimeSpan.FromSeconds(10), context.RequestAborted);
            await context.Response.WriteAsync("second chunk\n", context.RequestAborted);
        });
        app.MapGet("/big", async (HttpContext context) =>
        {
            // 256 MiB, unless the client (the proxy) goes away first.
            context.Response.ContentType = "application/octet-stream";
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 4096 && !context.RequestAborted.IsCancellationRequested; i++)
            {
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
            }
        });
        await app.StartAsync();
        upstream = new HttpUpstream(app);
        upstream.Port = LoopbackWebApp.Port(app);
        return upstream;
    }

    public async ValueTask DisposeAsync()
    {
        _streamGate.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
