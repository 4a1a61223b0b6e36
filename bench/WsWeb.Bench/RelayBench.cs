using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Addons;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Bench;

/// <summary>
/// The relay core alone: a real <see cref="WebSocketRelay"/> (frame codec, assembler, capture into a
/// <see cref="FlowStore"/>, frame writer) between in-memory pipes, no sockets, no Kestrel. Client frames
/// (masked) are pumped in one side and server frames the other, as an echo would; the outputs are
/// drained and counted. This is the ceiling the socket legs add to.
/// </summary>
internal static class RelayBench
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static async Task<string> RunAsync(IEnumerable<(int Size, int Messages)> shapes, int? retain)
    {
        var text = new StringBuilder();
        text.AppendLine("| message | messages relayed (both directions) | msg/s | MB/s | CPU µs / msg | alloc B / msg | GC 0/1/2 |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (var (size, messages) in shapes)
        {
            await RunOnceAsync(size, Math.Max(1, messages / 10), retain); // warm-up
            text.AppendLine(await RunOnceAsync(size, messages, retain));
        }

        return text.ToString();
    }

    private static async Task<string> RunOnceAsync(int size, int messagesPerDirection, int? retain)
    {
        var store = new FlowStore(retain is { } max ? new FlowStoreOptions { MaxMessagesPerFlow = max } : null);
        var flow = new HttpFlow(new HttpRequestData { Method = "GET", Scheme = "http", Host = "127.0.0.1", Port = 9, Path = "/echo" }, 0)
        {
            WebSocket = store.CreateWebSocketData(),
        };
        store.Add(flow);

        var pipeOptions = new PipeOptions(pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, useSynchronizationContext: false);
        var fromClient = new Pipe(pipeOptions);
        var toClient = new Pipe(pipeOptions);
        var fromServer = new Pipe(pipeOptions);
        var toServer = new Pipe(pipeOptions);
        var client = new RelayLeg("client", isClient: true, fromClient.Reader, toClient.Writer, () => { });
        var server = new RelayLeg("server", isClient: false, fromServer.Reader, toServer.Writer, () => { });
        var relay = new WebSocketRelay(flow, client, server, store, new AddonPipeline([], NullLogger<AddonPipeline>.Instance), TimeProvider.System, new RelaySettings(), NullLogger.Instance);

        // Batches of frames, encoded once and written again and again.
        var batch = Math.Max(1, 16 * 1024 / (size + 14));
        var clientFrames = EncodeFrames(size, batch, masked: true);
        var serverFrames = EncodeFrames(size, batch, masked: false);
        var rounds = (messagesPerDirection + batch - 1) / batch;
        var total = (long)rounds * batch;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var (gen0, gen1, gen2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var stopwatch = Stopwatch.StartNew();

        var running = relay.RunAsync(CancellationToken.None);
        var drainServer = DrainAsync(toServer.Reader, clientFrames.Length * (long)rounds);
        var drainClient = DrainAsync(toClient.Reader, serverFrames.Length * (long)rounds);
        var feedClient = FeedAsync(fromClient.Writer, clientFrames, rounds);
        var feedServer = FeedAsync(fromServer.Writer, serverFrames, rounds);
        await Task.WhenAll(feedClient, feedServer, drainServer, drainClient);
        stopwatch.Stop();

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuBefore;
        var gcs = $"{GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}";

        await fromClient.Writer.CompleteAsync();
        await fromServer.Writer.CompleteAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(10));
        var recorded = flow.WebSocket!.TotalCount;
        if (recorded != 2 * total)
        {
            throw new InvalidOperationException($"The relay recorded {recorded} messages, expected {2 * total}.");
        }

        var relayed = 2 * total;
        var seconds = stopwatch.Elapsed.TotalSeconds;
        return string.Create(Invariant,
            $"| {Report.FormatSize(size)} binary | {relayed:N0} | {Report.Number(relayed / seconds)} | {Report.Number(relayed * (double)size / seconds / 1e6)} | {Report.Number(cpu.TotalMicroseconds / relayed)} | {Report.Number(allocated / (double)relayed)} | {gcs} |");
    }

    private static byte[] EncodeFrames(int size, int count, bool masked)
    {
        var payload = new byte[size];
        new Random(1).NextBytes(payload);
        var headerLength = FrameCodec.HeaderLength(size, masked);
        var frames = new byte[(headerLength + size) * count];
        var offset = 0;
        for (var i = 0; i < count; i++)
        {
            int? mask = masked ? 0x5A3C_1E77 + i : null;
            offset += FrameCodec.WriteHeader(frames.AsSpan(offset), fin: true, rsv1: false, Opcode.Binary, size, mask);
            payload.CopyTo(frames, offset);
            if (mask is { } key)
            {
                FrameCodec.ApplyMask(frames.AsSpan(offset, size), key, 0);
            }

            offset += size;
        }

        return frames;
    }

    private static async Task FeedAsync(PipeWriter writer, byte[] frames, int rounds)
    {
        for (var i = 0; i < rounds; i++)
        {
            await writer.WriteAsync(frames);
        }
    }

    private static async Task DrainAsync(PipeReader reader, long expected)
    {
        long seen = 0;
        while (seen < expected)
        {
            var result = await reader.ReadAsync();
            seen += result.Buffer.Length;
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        if (seen != expected)
        {
            throw new InvalidOperationException($"Drained {seen} bytes, expected {expected}.");
        }
    }
}
