using System.Runtime;
using WsWeb.Bench;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync($"error: {ex.Message}\n\n{BenchOptions.Usage}");
    return 2;
}

if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

Console.WriteLine($"WsWeb.Bench: {Environment.ProcessorCount} cores, load average {LoadAverage()}, .NET {Environment.Version}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC ({GCSettings.LatencyMode}), {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
Console.WriteLine();

if (options.DefaultScenarios || !(options.FilterBench || options.RelayBench))
{
    await RunLoadAsync(options);
}

if (options.RelayBench)
{
    Console.WriteLine("## Relay core over in-memory pipes (no sockets, capture on)");
    Console.WriteLine();
    (int, int)[] shapes = options.DefaultScenarios || options.Size == 64
        ? [(64, 400_000), (1024 * 1024, 400)]
        : [(options.Size, Math.Max(10, (int)Math.Min(400_000, 400L * 1024 * 1024 / options.Size)))];
    Console.WriteLine(await RelayBench.RunAsync(shapes, options.Retain));
}

if (options.FilterBench)
{
    Console.WriteLine("## FlowFilter evaluation (one thread, in memory)");
    Console.WriteLine();
    Console.WriteLine(FilterBench.Run());
}

return 0;

static async Task RunLoadAsync(BenchOptions options)
{
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cancel.Cancel();
    };

    var scenarios = options.Scenarios();
    var runDirect = options.Mode != BenchMode.Proxy;
    var runProxy = options.Mode != BenchMode.Direct;

    await using var echo = await EchoServer.StartAsync();
    await using var proxy = runProxy ? await ProxyHost.StartAsync(options.Retain) : null;
    await using var relay = options.TcpRelay ? TcpRelay.Start(echo.Port) : null;
    Console.WriteLine($"echo server {echo.Uri}{(proxy is null ? "" : $", proxy {proxy.ProxyUri} (capture on: every message is recorded in the FlowStore, {proxy.Options.MaxMessagesPerFlow:N0} messages retained per flow)")}{(relay is null ? "" : $", bare TCP relay 127.0.0.1:{relay.Port}")}");
    Console.WriteLine();

    var token = cancel.Token;
    if (options.Warmup)
    {
        foreach (var scenario in scenarios)
        {
            // A third of the run per mode: enough for tiered compilation (and PGO) to reach its final code.
            var warm = scenario with { Messages = Math.Max(10, scenario.Messages / 3) };
            Progress($"warm-up {scenario.Name}");
            if (runDirect)
            {
                await LoadRunner.RunAsync("direct", warm, echo.Uri, null, token);
            }

            if (relay is not null)
            {
                await LoadRunner.RunAsync("tcp relay", warm, relay.Uri(echo.Uri), null, token);
            }

            if (proxy is not null)
            {
                await LoadRunner.RunAsync("proxy", warm, echo.Uri, proxy.ProxyUri, token);
                proxy.ClearFlows();
            }
        }
    }

    var rows = new List<(Scenario, RunResult?, RunResult?, RunResult?)>();
    var all = new List<RunResult>();
    var capture = new List<string>();
    foreach (var scenario in scenarios)
    {
        var directRuns = new List<RunResult>();
        var proxyRuns = new List<RunResult>();
        var relayRuns = new List<RunResult>();
        for (var run = 1; run <= options.EffectiveRuns; run++)
        {
            if (runDirect)
            {
                directRuns.Add(await MeasureAsync("direct", scenario, run, echo.Uri, null, token));
            }

            if (relay is not null)
            {
                relayRuns.Add(await MeasureAsync("tcp relay", scenario, run, relay.Uri(echo.Uri), null, token));
            }

            if (proxy is not null)
            {
                proxyRuns.Add(await MeasureAsync("proxy", scenario, run, echo.Uri, proxy.ProxyUri, token));
                var (flows, webSocketFlows, messages, retained) = proxy.Recorded();
                capture.Add($"- {scenario.Name}, run {run}: the FlowStore recorded {flows} flows ({webSocketFlows} WebSocket), {messages:N0} messages ({retained:N0} retained; expected {2 * scenario.RoundTrips:N0}: every message and its echo)");
                proxy.ClearFlows();
            }
        }

        var direct = Median(directRuns);
        var proxied = Median(proxyRuns);
        rows.Add((scenario, direct, proxied, Median(relayRuns)));
        all.AddRange(directRuns.Concat(relayRuns).Concat(proxyRuns));
    }

    Console.WriteLine();
    Console.WriteLine("## Direct vs through the proxy (round trips per second; latency is send → echo received)");
    Console.WriteLine();
    Console.WriteLine(Report.Summary(rows));
    Console.WriteLine("## Details (whole process: clients, echo server and proxy share the machine)");
    Console.WriteLine();
    Console.WriteLine(Report.Details(all));
    Console.WriteLine($"load average at the end: {LoadAverage()} (other processes on the machine skew msg/s; CPU µs per round trip much less)");
    Console.WriteLine();
    if (capture.Count > 0)
    {
        Console.WriteLine("## Capture");
        Console.WriteLine();
        foreach (var line in capture)
        {
            Console.WriteLine(line);
        }

        Console.WriteLine();
    }
}

/// <summary>One measured run, reported on the progress line.</summary>
static async Task<RunResult> MeasureAsync(string mode, Scenario scenario, int run, Uri target, Uri? proxy, CancellationToken token)
{
    var result = await LoadRunner.RunAsync(mode, scenario, target, proxy, token);
    Progress($"{scenario.Name} {mode,-9} run {run}: {Report.Number(result.MessagesPerSecond)} msg/s, p50 {Report.Ms(result.P50Ms)} ms, p99 {Report.Ms(result.P99Ms)} ms");
    return result;
}

static RunResult? Median(List<RunResult> runs) =>
    runs.Count == 0 ? null : runs.OrderBy(r => r.MessagesPerSecond).ElementAt(runs.Count / 2);

static string LoadAverage()
{
    try
    {
        return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }
    catch (IOException)
    {
        return "n/a";
    }
    catch (UnauthorizedAccessException)
    {
        return "n/a";
    }
}

static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
