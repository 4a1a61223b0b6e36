using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>
/// More connections than WsWeb may open: refused quickly, and the host keeps serving. (A process that runs out of
/// file descriptors could not accept, spun on the failing accept, and the runtime aborted it with "Out of memory.")
/// </summary>
public sealed partial class ConnectionLimitHostTests
{
    [Fact]
    public async Task WithMaxConnections_ConnectionsBeyondItAreRefused_AndTheHostServesOnceOthersClose()
    {
        var app = new WsWebApp(options => options with { MaxConnections = 2 });
        await app.InitializeAsync();
        try
        {
            await RefusesBeyondTheLimitAsync(app);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static async Task RefusesBeyondTheLimitAsync(WsWebApp app)
    {
        var held = new List<TcpClient> { await ConnectAsync(app.ProxyPort), await ConnectAsync(app.ProxyPort) };
        try
        {
            // The two idle clients may still be on their way through the accept: the third is refused once they count.
            string answer;
            do
            {
                using var third = await ConnectAsync(app.ProxyPort);
                answer = await ReadToEndAsync(third);
            }
            while (answer.Length == 0);

            Assert.StartsWith("HTTP/1.1 503 Service Unavailable", answer, StringComparison.Ordinal);
            Assert.Contains("--max-connections", answer, StringComparison.Ordinal);

            // The dashboard's listener has its own limit: the proxy's full house does not lock anyone out of it.
            Assert.Contains("\"status\":\"ok\"", await app.Api.GetStringAsync(new Uri("/healthz", UriKind.Relative)), StringComparison.Ordinal);
        }
        finally
        {
            held[0].Dispose();
        }

        // One slot free again: a proxied WebSocket works.
        var (client, _, flow) = await ConnectWithRetryAsync(app);
        await using (client)
        {
            await client.SendTextAsync("after the refusals");
            Assert.Equal("after the refusals", await client.ReceiveTextAsync());
            Assert.True(flow.IsLive);
        }

        held[1].Dispose();
    }

    /// <summary>Connections to each port at once: with the runtime's own, far more than 700 descriptors if all were accepted at once.</summary>
    private const int Flood = 600;

    [Fact]
    public async Task UnderALowOpenFileLimit_AFloodOnBothPortsIsRefused_AndTheProcessLives()
    {
        // The open-file limit is the child process's own (sh's ulimit, then exec): the test runner keeps its own.
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-nofile-" + Guid.NewGuid().ToString("N"));
        var wsweb = await WsWebProcess.StartAsync(
            ["--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory],
            wrapper: "ulimit -n 700 && exec \"$@\"");
        try
        {
            var limits = Limits().Match(await wsweb.WaitForLineAsync(line => Limits().IsMatch(line), "its connection limits"));
            var proxyLimit = int.Parse(limits.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var webLimit = int.Parse(limits.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("700", limits.Groups[3].Value);

            // Idle connections to each port. With unlimited listeners these accepts went past 700 descriptors on top of what
            // the runtime holds (about 270); with limits that only refused after the accept, the refusals waiting for the
            // thread pool still did (a log line said so, and a process that then cannot load an assembly aborts).
            var flood = await Task.WhenAll(
                Task.WhenAll(Enumerable.Range(0, Flood).Select(_ => ConnectAsync(wsweb.ProxyPort))),
                Task.WhenAll(Enumerable.Range(0, Flood).Select(_ => ConnectAsync(wsweb.WebPort))));
            try
            {
                var proxyAnswers = await Task.WhenAll(flood[0].Select(ReadSomeAsync));
                var webAnswers = await Task.WhenAll(flood[1].Select(ReadSomeAsync));

                // Each listener keeps its limit's worth open (idle: no answer yet) and refuses the rest with a 503.
                var counted = $"proxy: {Tally(proxyAnswers)}; web: {Tally(webAnswers)}; WsWeb {(wsweb.HasExited ? "exited" : "runs")}, its output:\n{wsweb.Output}";
                Assert.True(proxyAnswers.Count(a => a is null) == proxyLimit, $"{proxyLimit} proxy connections should stay open; {counted}");
                Assert.True(proxyAnswers.Count(IsRefusal) == Flood - proxyLimit, $"{Flood - proxyLimit} proxy connections should be refused; {counted}");
                Assert.True(webAnswers.Count(a => a is null) == webLimit, $"{webLimit} web connections should stay open; {counted}");
                Assert.True(webAnswers.Count(IsRefusal) == Flood - webLimit, $"{Flood - webLimit} web connections should be refused; {counted}");
                Assert.False(wsweb.Lines.Any(line => line.Contains("cannot accept connections", StringComparison.Ordinal)), $"The process ran out of descriptors; {counted}");
            }
            finally
            {
                foreach (var client in flood.SelectMany(c => c))
                {
                    client.Dispose();
                }
            }

            // The flood gone, both listeners serve again.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var health = await RetryAsync(() => http.GetStringAsync(new Uri($"http://127.0.0.1:{wsweb.WebPort}/healthz")));
            Assert.Contains("\"status\":\"ok\"", health, StringComparison.Ordinal);
            using var proxied = new HttpClient(new HttpClientHandler { Proxy = new WebProxy($"http://127.0.0.1:{wsweb.ProxyPort}"), UseProxy = true }) { Timeout = TimeSpan.FromSeconds(30) };
            await using var upstream = await EchoPeer.StartAsync();
            var viaProxy = await RetryAsync(() => proxied.GetAsync(new Uri($"http://127.0.0.1:{upstream.Port}/plain")));
            Assert.Equal(HttpStatusCode.NotFound, viaProxy.StatusCode);   // the upstream's own answer
            Assert.False(wsweb.HasExited);
            Assert.DoesNotContain(wsweb.Lines, line => line.Contains("Out of memory", StringComparison.Ordinal) || line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal));
        }
        finally
        {
            await wsweb.DisposeAsync();
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    private static bool IsRefusal(string? answer) => answer?.StartsWith("HTTP/1.1 503", StringComparison.Ordinal) == true;

    private static string Tally(string?[] answers) =>
        $"{answers.Count(a => a is null)} open, {answers.Count(IsRefusal)} refused, {answers.Count(a => a == "")} closed without an answer, {answers.Count(a => a is { Length: > 0 } && !IsRefusal(a))} other";

    private static async Task<TcpClient> ConnectAsync(int port)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        return client;
    }

    private static async Task<string> ReadToEndAsync(TcpClient client)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var buffer = new MemoryStream();
        try
        {
            await client.GetStream().CopyToAsync(buffer, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // Still open: it was let in (one of the first two had not been counted yet).
            return "";
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>What the server sent before closing, or null while the connection stays open and silent.</summary>
    private static async Task<string?> ReadSomeAsync(TcpClient client)
    {
        // A refusal comes within moments; an admitted idle connection says nothing for far longer than this.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[512];
        try
        {
            var read = await client.GetStream().ReadAsync(buffer, timeout.Token);
            return Encoding.UTF8.GetString(buffer, 0, read);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static async Task<(ClientPeer Client, PeerConnection Server, WsWeb.Core.Flows.HttpFlow Flow)> ConnectWithRetryAsync(WsWebApp app)
    {
        // The freed slot is counted free once the server has seen the close.
        return await RetryAsync(app.ConnectAsync);
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> attempt)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                return await attempt();
            }
            catch (Exception) when (i < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    [GeneratedRegex(@"Connections kept open at once: (\d+) on the proxy listener, (\d+) on the web listener \(open-file limit (\d+)\)")]
    private static partial Regex Limits();
}
