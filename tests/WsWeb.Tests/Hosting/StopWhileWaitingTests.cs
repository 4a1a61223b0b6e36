using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using WsWeb.Core.Flows;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>
/// Ctrl+C while a request waits for a server that never answers, or while an import is still uploading: the host
/// answers 503 and stops, instead of waiting out its shutdown timeout and then cutting the client off without a word.
/// </summary>
/// <remarks>
/// Each host here gets a shutdown timeout of five minutes, far beyond the tests' own waits: only an exchange given up
/// by shutdown itself lets the stop finish in time, and only then does the client read a 503 rather than a bare close.
/// </remarks>
public sealed class StopWhileWaitingTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("GET http://127.0.0.1:{0}/never HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n", "/never")]
    [InlineData("GET ws://127.0.0.1:{0}/never-upgrades HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "/never-upgrades")]
    [InlineData("POST http://127.0.0.1:{0}/never-reads HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\nContent-Length: 100000\r\n\r\nthe first bytes of a body that never ends", "/never-reads")]
    public async Task ARequestWaitingOnAStuckServer_Gets503AndTheFlowSaysWhy_WhenTheHostStops(string request, string path)
    {
        using var stuck = new TcpListener(IPAddress.Loopback, 0);
        stuck.Start();
        var stuckPort = ((IPEndPoint)stuck.LocalEndpoint).Port;
        var log = new RecordingLoggerProvider();
        var app = StartedApp(log);
        await app.InitializeAsync();
        var stopped = false;
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, app.ProxyPort);
            await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(string.Format(System.Globalization.CultureInfo.InvariantCulture, request, stuckPort)));
            using var upstream = await stuck.AcceptTcpClientAsync().WaitAsync(Generous);
            var flow = await WaitForFlowAsync(app, path);

            var stop = app.DisposeAsync();
            stopped = true;
            var answer = await ReadToEndAsync(client.GetStream());

            Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", answer, StringComparison.Ordinal);
            Assert.Contains("Connection: close", answer, StringComparison.Ordinal);
            Assert.Contains($"WsWeb is shutting down; it stopped waiting for 127.0.0.1:{stuckPort} to answer.", answer, StringComparison.Ordinal);
            Assert.Equal($"WsWeb is shutting down; it stopped waiting for 127.0.0.1:{stuckPort} to answer.", flow.Error);
            Assert.Null(flow.Response);   // no server answered: an error, as for any upstream failure
            await stop.WaitAsync(Generous);
            Assert.False(flow.IsLive);
            Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Error);
        }
        finally
        {
            if (!stopped)
            {
                await app.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AResponseBodyThatStalls_IsCutShort_AndTheFlowSaysSo_WhenTheHostStops()
    {
        using var stalling = new TcpListener(IPAddress.Loopback, 0);
        stalling.Start();
        var port = ((IPEndPoint)stalling.LocalEndpoint).Port;
        var app = StartedApp(new RecordingLoggerProvider());
        await app.InitializeAsync();
        var stopped = false;
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, app.ProxyPort);
            await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes($"GET http://127.0.0.1:{port}/stalls HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
            using var upstream = await stalling.AcceptTcpClientAsync().WaitAsync(Generous);
            await upstream.GetStream().WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nthe first part"u8.ToArray());
            var flow = await WaitForFlowAsync(app, "/stalls");

            // The flow records the head before Kestrel writes it: wait until the client has it, or the stop would
            // rightly answer 503 to a client that had nothing yet.
            var received = await ReadUntilAsync(client.GetStream(), "the first part");

            var stop = app.DisposeAsync();
            stopped = true;
            string answer;
            try
            {
                answer = received + await ReadToEndAsync(client.GetStream());
            }
            catch (IOException)
            {
                answer = received + "(reset)";
            }

            // The head went out already: the client can only see its body end early.
            Assert.DoesNotContain("503", answer, StringComparison.Ordinal);
            await stop.WaitAsync(Generous);
            Assert.Equal($"WsWeb shut down while relaying the response of 127.0.0.1:{port}; the client got part of its body.", flow.Error);
            Assert.Equal(200, flow.Response!.StatusCode);
        }
        finally
        {
            if (!stopped)
            {
                await app.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AnImportStillUploading_IsGivenUpWithA503_WhenTheHostStops()
    {
        var log = new RecordingLoggerProvider();
        var app = StartedApp(log);
        await app.InitializeAsync();
        var stopped = false;
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, app.WebPort);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST /api/flows/import?format=json HTTP/1.1\r\nHost: 127.0.0.1:{app.WebPort}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["));

            // The upload is under way once the request is logged as started; nothing more of it comes.
            await Eventually.AssertAsync(() => log.Entries.Any(e => e.Message.Contains("/api/flows/import", StringComparison.Ordinal)), "the import request started");
            var store = app.Store;
            var stop = app.DisposeAsync();
            stopped = true;
            string answer;
            try
            {
                answer = await ReadToEndAsync(stream);
            }
            catch (IOException)
            {
                // A reset may overtake the answer: the connection is closed rather than drained of a body that never ends.
                answer = "";
            }

            if (answer.Length > 0)
            {
                Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", answer, StringComparison.Ordinal);
                Assert.Contains("WsWeb is shutting down; the upload was not imported.", answer, StringComparison.Ordinal);
            }

            await stop.WaitAsync(Generous);
            Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Error);
            Assert.Equal(0, store.Count);
        }
        finally
        {
            if (!stopped)
            {
                await app.DisposeAsync();
            }
        }
    }

    private static WsWebApp StartedApp(RecordingLoggerProvider log) => new(services =>
    {
        services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromMinutes(5));
        services.AddLogging(logging => logging.AddProvider(log).AddFilter<RecordingLoggerProvider>(null, LogLevel.Information));
    });

    private static async Task<HttpFlow> WaitForFlowAsync(WsWebApp app, string path)
    {
        HttpFlow? flow = null;
        await Eventually.AssertAsync(() => (flow = app.Store.Query(f => f.Request.Path == path && f.IsLive, take: 1).FirstOrDefault()) is not null, $"the flow of {path} is live");
        return flow!;
    }

    private static async Task<string> ReadUntilAsync(NetworkStream stream, string expected)
    {
        using var timeout = new CancellationTokenSource(Generous);
        var received = new StringBuilder();
        var buffer = new byte[256];
        while (!received.ToString().Contains(expected, StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            Assert.True(read > 0, $"the connection ended before '{expected}' arrived; it got: {received}");
            received.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        return received.ToString();
    }

    private static async Task<string> ReadToEndAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(Generous);
        var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, timeout.Token);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
