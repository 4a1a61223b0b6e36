using System.Globalization;

namespace WsWeb.Bench;

internal enum BenchMode
{
    Both,
    Proxy,
    Direct,
}

/// <summary>One load shape: N connections each sending M messages of S bytes, at most W unanswered.</summary>
internal sealed record Scenario(string Name, int Connections, int Messages, int Size, int Window, bool Text, double Target)
{
    public long RoundTrips => (long)Connections * Messages;

    public string Describe() =>
        $"{Report.FormatSize(Size)} {(Text ? "text" : "binary")}, {Connections} conn × {Messages} msgs, window {Window}";
}

/// <summary>The command line, parsed by hand (a handful of flags).</summary>
internal sealed record BenchOptions
{
    public int Connections { get; init; } = 4;

    public int Messages { get; init; } = 20_000;

    public int Size { get; init; } = 64;

    public int Window { get; init; } = 16;

    public BenchMode Mode { get; init; } = BenchMode.Both;

    public bool Text { get; init; }

    /// <summary>Run the two headline scenarios (also what no arguments do).</summary>
    public bool DefaultScenarios { get; init; }

    public bool FilterBench { get; init; }

    public bool RelayBench { get; init; }

    /// <summary>Also measure a bare TCP relay (no parsing, no capture): the floor for any proxy here.</summary>
    public bool TcpRelay { get; init; }

    public bool Warmup { get; init; } = true;

    /// <summary>Measured runs per mode (default 3 for the default scenarios, else 1); the report keeps the median by throughput.</summary>
    public int? Runs { get; init; }

    public int EffectiveRuns => Runs ?? (DefaultScenarios ? 3 : 1);

    public bool Help { get; init; }

    /// <summary>The proxy's per-flow retention (<c>ProxyOptions.MaxMessagesPerFlow</c>); null keeps the default.</summary>
    public int? Retain { get; init; }

    public const string Usage = """
        WsWeb.Bench: echo server, N connections × M messages of S bytes with a window W, through the WsWeb proxy and directly.

        usage: dotnet run -c Release --project bench/WsWeb.Bench -- [options]

          --scenarios default   the two headline scenarios (64 B and 1 MiB) with PASS/FAIL (also: no arguments)
          --connections N       connections (default 4)
          --messages M          messages per connection (default 20000)
          --size S              message size in bytes; k/m suffixes are ×1024 / ×1024² (default 64)
          --window W            messages in flight per connection (default 16)
          --mode both|proxy|direct   what to measure (default both)
          --text                text messages (ASCII JSON-like) instead of binary
          --runs R              measured runs per mode, alternating; the median by throughput is reported
                                (default 3 with --scenarios default, else 1)
          --no-warmup           skip the discarded warm-up run
          --retain N            messages the FlowStore keeps per flow (default: the proxy's 100000); capture stays on
          --tcp-relay           also measure a bare TCP relay (no parsing, no capture): what any proxy that
                                terminates both TCP legs costs here (on with --scenarios default and --all)
          --filter-bench        FlowFilter evaluation speed and allocations on in-memory messages
          --relay-bench         the relay core alone (codec, assembler, capture) over in-memory pipes
          --all                 --scenarios default, then --relay-bench and --filter-bench
          -h, --help            this text
        """;

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions { DefaultScenarios = args.Length == 0, TcpRelay = args.Length == 0 };
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            options = arg switch
            {
                "--connections" or "-c" => options with { Connections = PositiveInt(arg, Value(args, ref i)) },
                "--messages" or "-m" => options with { Messages = PositiveInt(arg, Value(args, ref i)) },
                "--size" or "-s" => options with { Size = SizeValue(arg, Value(args, ref i)) },
                "--window" or "-w" => options with { Window = PositiveInt(arg, Value(args, ref i)) },
                "--mode" => options with { Mode = ModeValue(Value(args, ref i)) },
                "--text" => options with { Text = true },
                "--runs" => options with { Runs = PositiveInt(arg, Value(args, ref i)) },
                "--no-warmup" => options with { Warmup = false },
                "--retain" => options with { Retain = PositiveInt(arg, Value(args, ref i)) },
                "--scenarios" => ScenarioValue(options, Value(args, ref i)),
                "--tcp-relay" => options with { TcpRelay = true },
                "--filter-bench" => options with { FilterBench = true },
                "--relay-bench" => options with { RelayBench = true },
                "--all" => options with { DefaultScenarios = true, TcpRelay = true, RelayBench = true, FilterBench = true },
                "-h" or "--help" or "-?" => options with { Help = true },
                _ => throw new ArgumentException($"unknown argument '{arg}'"),
            };
        }

        return options;
    }

    /// <summary>The scenarios this invocation runs.</summary>
    public IReadOnlyList<Scenario> Scenarios() => DefaultScenarios
        ?
        [
            new Scenario("64 B", 4, 20_000, 64, 16, Text, Target: 0.50),
            new Scenario("1 MiB", 2, 1000, 1024 * 1024, 4, Text, Target: 0.70),
        ]
        : [new Scenario(Report.FormatSize(Size), Connections, Messages, Size, Window, Text, Target: Size >= 1024 * 1024 ? 0.70 : 0.50)];

    private static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length)
        {
            throw new ArgumentException($"{args[i]} needs a value");
        }

        return args[++i];
    }

    private static int PositiveInt(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{name} needs a positive integer, not '{value}'");

    private static int SizeValue(string name, string value)
    {
        var text = value.Trim().ToLowerInvariant();
        long multiplier = 1;
        foreach (var (suffix, factor) in new[] { ("kib", 1024L), ("kb", 1024L), ("k", 1024L), ("mib", 1024L * 1024), ("mb", 1024L * 1024), ("m", 1024L * 1024), ("b", 1L) })
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                text = text[..^suffix.Length];
                multiplier = factor;
                break;
            }
        }

        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 && n * multiplier <= 64L * 1024 * 1024
            ? (int)(n * multiplier)
            : throw new ArgumentException($"{name} needs a size between 1 byte and 64 MiB (the proxy's default limit), not '{value}'");
    }

    private static BenchMode ModeValue(string value) => value.ToLowerInvariant() switch
    {
        "both" => BenchMode.Both,
        "proxy" => BenchMode.Proxy,
        "direct" => BenchMode.Direct,
        _ => throw new ArgumentException($"--mode is both, proxy or direct, not '{value}'"),
    };

    private static BenchOptions ScenarioValue(BenchOptions options, string value) =>
        string.Equals(value, "default", StringComparison.OrdinalIgnoreCase)
            ? options with { DefaultScenarios = true, TcpRelay = true }
            : throw new ArgumentException($"the only scenario set is 'default', not '{value}'");
}
