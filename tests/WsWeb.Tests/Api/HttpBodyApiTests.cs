using System.IO.Compression;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>GET /api/flows/{id}/request/content and /response/content: the plain HTTP bodies the dashboard shows, for scripts.</summary>
public sealed class HttpBodyApiTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    private const string Page = "<html><script>alert('not here')</script>ünïcödé</html>";
    private WebApplication? _upstream;
    private int _port;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        _upstream = builder.Build();
        var gzip = Compression.Gzip(Encoding.UTF8.GetBytes(Page), CompressionLevel.Fastest);
        _upstream.MapGet("/page", (HttpContext context) => Send(context, gzip));
        _upstream.MapGet("/cut", (HttpContext context) => Send(context, gzip[..^10]));
        _upstream.MapPost("/form", async (HttpContext context) =>
        {
            await context.Request.Body.CopyToAsync(Stream.Null);
            return Results.Text("thanks");
        });
        await _upstream.StartAsync();
        _port = new Uri(_upstream.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;

        static async Task Send(HttpContext context, byte[] body)
        {
            context.Response.Headers.ContentEncoding = "gzip";
            context.Response.ContentType = "text/html; charset=utf-8";
            await context.Response.Body.WriteAsync(body);
        }
    }

    public async Task DisposeAsync()
    {
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
    }

    private async Task<HttpFlow> ThroughProxyAsync(HttpMethod method, string path, string? body = null)
    {
        var tag = Guid.NewGuid().ToString("N");
        using var client = new HttpClient(new HttpClientHandler { Proxy = new WebProxy(app.ProxyUri), UseProxy = true, AutomaticDecompression = DecompressionMethods.None });
        using var request = new HttpRequestMessage(method, new Uri($"http://127.0.0.1:{_port}{path}?t={tag}")) { Content = body is null ? null : new StringContent(body) };
        using var response = await client.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = app.Store.Query(f => f.Request.Path.Contains(tag, StringComparison.Ordinal) && !f.IsLive, take: 1).FirstOrDefault()) is not null, "the flow ended");
        return flow!;
    }

    [Fact]
    public async Task A_response_body_as_recorded_or_decoded_never_as_a_page_of_the_dashboard()
    {
        var flow = await ThroughProxyAsync(HttpMethod.Get, "/page");

        using var raw = await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content");
        Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
        Assert.Equal(flow.Response!.Content, await raw.Content.ReadAsByteArrayAsync());
        Assert.Equal("application/octet-stream", raw.Content.Headers.ContentType?.MediaType);
        Assert.Equal("nosniff", raw.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("false", raw.Headers.GetValues("X-Content-Truncated").Single());
        Assert.Equal(flow.Response.ContentLength.ToString(System.Globalization.CultureInfo.InvariantCulture), raw.Headers.GetValues("X-Content-Length").Single());

        using var decoded = await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content?decode=true");
        Assert.Equal(Page, Encoding.UTF8.GetString(await decoded.Content.ReadAsByteArrayAsync()));
        Assert.Equal("application/octet-stream", decoded.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_body_that_does_not_decode_is_a_409_saying_why_and_its_bytes_are_still_there()
    {
        var flow = await ThroughProxyAsync(HttpMethod.Get, "/cut");

        var problem = await ApiAssert.ProblemAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content?decode=true"), HttpStatusCode.Conflict);
        Assert.Contains("could not gzip-decode", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(flow.Response!.Content, await (await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content")).Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_request_body_and_the_problems_for_what_is_not_there()
    {
        var flow = await ThroughProxyAsync(HttpMethod.Post, "/form", "name=wsweb&lang=c%23");

        Assert.Equal("name=wsweb&lang=c%23", await (await app.Api.GetAsync($"/api/flows/{flow.Id}/request/content")).Content.ReadAsStringAsync());
        Assert.Equal("thanks", await (await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content")).Content.ReadAsStringAsync());
        await ApiAssert.ProblemAsync(await app.Api.GetAsync("/api/flows/nope/response/content"), HttpStatusCode.NotFound);
        await ApiAssert.InvalidFieldAsync(await app.Api.GetAsync($"/api/flows/{flow.Id}/response/content?decoded=true"), "decoded");
    }
}
