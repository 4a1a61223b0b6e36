using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace WsWeb.Bench;

/// <summary>What one measured run produced.</summary>
internal sealed record RunResult(
    string Mode,
    Scenario Scenario,
    TimeSpan Elapsed,
    long[] LatencyTicks,
    long AllocatedBytes,
    ProcessCounters Counters,
    int Gen0,
    int Gen1,
    int Gen2)
{
    public double MessagesPerSecond => Scenario.RoundTrips / Elapsed.TotalSeconds;

    /// <summary>Payload megabytes (10^6) per second in one direction (the echo doubles what crosses the wire).</summary>
    public double MegabytesPerSecond => Scenario.RoundTrips * (double)Scenario.Size / Elapsed.TotalSeconds / 1e6;

    public double P50Ms => Percentile(0.50);

    public double P99Ms => Percentile(0.99);

    public double AllocatedPerRoundTrip => AllocatedBytes / (double)Scenario.RoundTrips;

    public double CpuMicrosPerRoundTrip => Counters.Cpu.TotalMicroseconds / Scenario.RoundTrips;

    /// <summary>The kernel's share of the CPU time: socket copies, TCP and scheduling.</summary>
    public double KernelShare => Counters.KernelCpu / Counters.Cpu;

    public double? ContextSwitchesPerRoundTrip => Counters.ContextSwitches / (double)Scenario.RoundTrips;

    public double? PageFaultsPerRoundTrip => Counters.PageFaults / (double)Scenario.RoundTrips;

    /// <summary>Nearest-rank percentile of the sorted latencies, in milliseconds.</summary>
    public double Percentile(double p)
    {
        if (LatencyTicks.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p * LatencyTicks.Length) - 1;
        return LatencyTicks[Math.Clamp(rank, 0, LatencyTicks.Length - 1)] * 1000.0 / Stopwatch.Frequency;
    }
}

/// <summary>
/// Drives a scenario with ClientWebSocket, directly or through the proxy (absolute-form ws:// via
/// <see cref="WebProxy"/>). Per connection one sender keeps up to W messages unanswered and one
/// receiver counts the echoes; latency is send-to-echo, kept in preallocated arrays.
/// </summary>
internal static class LoadRunner
{
    public static async Task<RunResult> RunAsync(string mode, Scenario scenario, Uri target, Uri? proxy, CancellationToken cancellationToken)
    {
        var payload = CreatePayload(scenario.Size, scenario.Text);
        var connections = new Connection[scenario.Connections];
        for (var i = 0; i < connections.Length; i++)
        {
            connections[i] = await Connection.OpenAsync(target, proxy, payload, scenario, cancellationToken);
        }

        // Settle the heap so one run's garbage is not collected on the next run's clock.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        var countersBefore = ProcessCounters.Read();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var (gen0, gen1, gen2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var stopwatch = Stopwatch.StartNew();

        var runs = new Task[connections.Length];
        for (var i = 0; i < connections.Length; i++)
        {
            runs[i] = connections[i].RunAsync(cancellationToken);
        }

        await Task.WhenAll(runs);
        stopwatch.Stop();
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        var counters = ProcessCounters.Read() - countersBefore;
        var collections = (GC.CollectionCount(0) - gen0, GC.CollectionCount(1) - gen1, GC.CollectionCount(2) - gen2);

        foreach (var connection in connections)
        {
            await connection.CloseAsync(cancellationToken);
        }

        var latencies = new long[scenario.RoundTrips];
        var offset = 0;
        foreach (var connection in connections)
        {
            connection.Latencies.CopyTo(latencies, offset);
            offset += connection.Latencies.Length;
        }

        Array.Sort(latencies);
        return new RunResult(mode, scenario, stopwatch.Elapsed, latencies, allocated, counters, collections.Item1, collections.Item2, collections.Item3);
    }

    /// <summary>Binary: pseudo-random bytes. Text: ASCII JSON of the requested length, like a chat or telemetry message.</summary>
    private static byte[] CreatePayload(int size, bool text)
    {
        var payload = new byte[size];
        if (!text)
        {
            new Random(42).NextBytes(payload);
            return payload;
        }

        var json = Encoding.ASCII.GetBytes("{\"type\":\"tick\",\"seq\":12345,\"data\":\"");
        var tail = "\"}"u8;
        if (size < json.Length + tail.Length)
        {
            payload.AsSpan().Fill((byte)'x');
            return payload;
        }

        json.CopyTo(payload, 0);
        for (var i = json.Length; i < size - tail.Length; i++)
        {
            payload[i] = (byte)('a' + (i % 26));
        }

        tail.CopyTo(payload.AsSpan(size - tail.Length));
        return payload;
    }

    private sealed class Connection
    {
        private readonly ClientWebSocket _socket;
        private readonly byte[] _payload;
        private readonly WebSocketMessageType _type;
        private readonly int _messages;
        private readonly long[] _sentAt;
        private readonly WindowGate _window;
        private readonly byte[] _receiveBuffer;

        private Connection(ClientWebSocket socket, byte[] payload, Scenario scenario)
        {
            _socket = socket;
            _payload = payload;
            _type = scenario.Text ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
            _messages = scenario.Messages;
            _sentAt = new long[scenario.Messages];
            Latencies = new long[scenario.Messages];
            _window = new WindowGate(scenario.Window);
            _receiveBuffer = new byte[Math.Max(payload.Length, 256)];
        }

        public long[] Latencies { get; }

        public static async Task<Connection> OpenAsync(Uri target, Uri? proxy, byte[] payload, Scenario scenario, CancellationToken cancellationToken)
        {
            var socket = new ClientWebSocket();
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            socket.Options.Proxy = proxy is null ? null : new WebProxy(proxy);
            if (proxy is null)
            {
                // No HTTP_PROXY from the environment on the direct leg either.
                socket.Options.Proxy = new NoProxy();
            }

            await socket.ConnectAsync(target, cancellationToken);
            return new Connection(socket, payload, scenario);
        }

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            var receiving = ReceiveAsync(cancellationToken);
            try
            {
                for (var i = 0; i < _messages; i++)
                {
                    await _window.WaitAsync();
                    _sentAt[i] = Stopwatch.GetTimestamp();
                    await _socket.SendAsync(_payload, _type, endOfMessage: true, cancellationToken);
                }
            }
            finally
            {
                await receiving;
            }
        }

        private async Task ReceiveAsync(CancellationToken cancellationToken)
        {
            for (var i = 0; i < _messages; i++)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(length), cancellationToken);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        throw new InvalidOperationException($"The server closed after {i} of {_messages} echoes: {_socket.CloseStatus} {_socket.CloseStatusDescription}");
                    }

                    length += result.Count;
                }
                while (!result.EndOfMessage && length < _receiveBuffer.Length);

                var now = Stopwatch.GetTimestamp();
                if (!result.EndOfMessage || length != _payload.Length)
                {
                    throw new InvalidOperationException($"Echo {i} has the wrong length ({length}, expected {_payload.Length}).");
                }

                Latencies[i] = now - _sentAt[i];
                _window.Release();
            }
        }

        public async Task CloseAsync(CancellationToken cancellationToken)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }
            finally
            {
                _socket.Dispose();
            }
        }
    }

    /// <summary>A proxy that sends everything direct (overrides HTTP_PROXY/ALL_PROXY from the environment).</summary>
    private sealed class NoProxy : IWebProxy
    {
        public ICredentials? Credentials { get; set; }

        public Uri? GetProxy(Uri destination) => null;

        public bool IsBypassed(Uri host) => true;
    }
}
