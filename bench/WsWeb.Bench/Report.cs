using System.Globalization;
using System.Text;

namespace WsWeb.Bench;

/// <summary>Markdown tables of the results.</summary>
internal static class Report
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string FormatSize(long bytes) => bytes switch
    {
        >= 1024 * 1024 when bytes % (1024 * 1024) == 0 => $"{bytes / (1024 * 1024)} MiB",
        >= 1024 when bytes % 1024 == 0 => $"{bytes / 1024} KiB",
        _ => $"{bytes} B",
    };

    public static string Number(double value) => value switch
    {
        >= 100 => value.ToString("N0", Invariant),
        >= 10 => value.ToString("N1", Invariant),
        _ => value.ToString("N2", Invariant),
    };

    private static string Optional(double? value) => value is { } v ? Number(v) : "–";

    public static string Ms(double value) => value.ToString(value >= 10 ? "N1" : value >= 1 ? "N2" : "N3", Invariant);

    /// <summary>
    /// The headline table: direct vs proxy per scenario, with the target verdict when both were measured,
    /// and the bare TCP relay (the floor for any proxy terminating both legs) when it ran.
    /// </summary>
    public static string Summary(IReadOnlyList<(Scenario Scenario, RunResult? Direct, RunResult? Proxy, RunResult? Relay)> rows)
    {
        var text = new StringBuilder();
        text.AppendLine("| scenario | direct msg/s | proxy msg/s | ratio | direct p50 / p99 (ms) | proxy p50 / p99 (ms) | target | result | CPU ratio | bare TCP relay msg/s (ratio) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
        foreach (var (scenario, direct, proxy, relay) in rows)
        {
            var ratio = direct is not null && proxy is not null ? proxy.MessagesPerSecond / direct.MessagesPerSecond : (double?)null;
            text.Append(Invariant, $"| {scenario.Name}: {scenario.Describe()} ")
                .Append(Invariant, $"| {(direct is null ? "–" : Number(direct.MessagesPerSecond))} ")
                .Append(Invariant, $"| {(proxy is null ? "–" : Number(proxy.MessagesPerSecond))} ")
                .Append(Invariant, $"| {(ratio is { } r ? r.ToString("P0", Invariant) : "–")} ")
                .Append(Invariant, $"| {(direct is null ? "–" : $"{Ms(direct.P50Ms)} / {Ms(direct.P99Ms)}")} ")
                .Append(Invariant, $"| {(proxy is null ? "–" : $"{Ms(proxy.P50Ms)} / {Ms(proxy.P99Ms)}")} ")
                .Append(Invariant, $"| ≥ {scenario.Target.ToString("P0", Invariant)} ")
                .Append(ratio is { } value ? (value >= scenario.Target ? "| PASS " : "| FAIL ") : "| – ")
                .Append(direct is not null && proxy is not null
                    ? string.Create(Invariant, $"| {direct.CpuMicrosPerRoundTrip / proxy.CpuMicrosPerRoundTrip:P0} ")
                    : "| – ")
                .AppendLine(relay is null
                    ? "| – |"
                    : string.Create(Invariant, $"| {Number(relay.MessagesPerSecond)}{(direct is null ? "" : $" ({relay.MessagesPerSecond / direct.MessagesPerSecond:P0})")} |"));
        }

        return text.ToString();
    }

    /// <summary>Where the time and memory went: bandwidth, CPU and allocations per round trip, collections.</summary>
    public static string Details(IEnumerable<RunResult> results)
    {
        var text = new StringBuilder();
        text.AppendLine(Invariant, $"| scenario | mode | time (s) | msg/s | MB/s (one way) | CPU µs / round trip | kernel share of CPU | CPU use (of {Environment.ProcessorCount} cores) | context switches / round trip | page faults / round trip | alloc B / round trip | GC 0/1/2 |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
        {
            var cpuUse = r.Counters.Cpu.TotalSeconds / r.Elapsed.TotalSeconds / Environment.ProcessorCount;
            text.AppendLine(Invariant, $"| {r.Scenario.Name} | {r.Mode} | {r.Elapsed.TotalSeconds:N2} | {Number(r.MessagesPerSecond)} | {Number(r.MegabytesPerSecond)} | {Number(r.CpuMicrosPerRoundTrip)} | {r.KernelShare:P0} | {cpuUse:P0} | {Optional(r.ContextSwitchesPerRoundTrip)} | {Optional(r.PageFaultsPerRoundTrip)} | {Number(r.AllocatedPerRoundTrip)} | {r.Gen0}/{r.Gen1}/{r.Gen2} |");
        }

        return text.ToString();
    }
}
