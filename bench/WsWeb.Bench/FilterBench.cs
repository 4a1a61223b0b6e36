using System.Diagnostics;
using System.Globalization;
using System.Text;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Bench;

/// <summary>
/// FlowFilter.Matches(flow, message) on messages built in memory: evaluations per second and bytes
/// allocated per evaluation (GC.GetAllocatedBytesForCurrentThread), one thread.
/// </summary>
internal static class FilterBench
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static readonly (string Name, string Expression)[] Filters =
    [
        // Single quotes: written as ~b "type":"ping" the value would end at the second quote and the rest
        // would parse as two bare URL terms (~u : and ~u ping), which never match.
        ("issue's example", "~websocket & ~wq & ~text & ~b '\"type\":\"ping\"'"),
        ("JSON path", "~ws ~json $.type == \"pong\""),
        ("flow + size", "~d example.com & ~websocket & ~size >100"),
        ("URL + binary", "~u /chat & ~binary"),
        ("negated JSON regex", "~wq & !~json $.type ~= \"^(ping|pong)$\""),
    ];

    public static string Run()
    {
        var flow = CreateFlow();
        var messages = CreateMessages(64);
        var text = new StringBuilder();
        text.AppendLine("| filter | messages | evaluations/s | ns / evaluation | alloc B / evaluation | matched |");
        text.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var (name, expression) in Filters)
        {
            text.AppendLine(Row(name, expression, flow, messages, "mixed ≤ 200 B"));
        }

        // ~b decodes the content before the regex runs: its cost grows with the message.
        var large = CreateLargeTexts();
        text.AppendLine(Row("issue's example", Filters[0].Expression, flow, large, "64 KiB text"));
        return text.ToString();
    }

    private static string Row(string name, string expression, HttpFlow flow, WebSocketMessage[] messages, string what)
    {
        var filter = FlowFilter.Parse(expression);

        // Warm up (tiering, regex caches), then size the run to about one second.
        var matched = 0L;
        var probe = Stopwatch.StartNew();
        long probeCount = 0;
        while (probe.ElapsedMilliseconds < 300)
        {
            for (var i = 0; i < messages.Length; i++)
            {
                matched += filter.Matches(flow, messages[i]) ? 1 : 0;
            }

            probeCount += messages.Length;
        }

        var iterations = Math.Max(1, (long)(probeCount / probe.Elapsed.TotalSeconds) / messages.Length);
        matched = 0;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var stopwatch = Stopwatch.StartNew();
        for (long round = 0; round < iterations; round++)
        {
            for (var i = 0; i < messages.Length; i++)
            {
                matched += filter.Matches(flow, messages[i]) ? 1 : 0;
            }
        }

        stopwatch.Stop();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        var evaluations = iterations * messages.Length;
        var perSecond = evaluations / stopwatch.Elapsed.TotalSeconds;
        return string.Create(Invariant,
            $"| {name}: `{expression.Replace("|", "\\|", StringComparison.Ordinal)}` | {what} | {Report.Number(perSecond)} | {stopwatch.Elapsed.TotalNanoseconds / evaluations:N0} | {allocated / (double)evaluations:N1} | {matched / (double)evaluations:P0} |");
    }

    private static HttpFlow CreateFlow()
    {
        var request = new HttpRequestData
        {
            Method = "GET",
            Scheme = "https",
            Host = "chat.example.com",
            Port = 443,
            Path = "/chat?room=lobby",
            Headers =
            {
                { "Host", "chat.example.com" },
                { "Upgrade", "websocket" },
                { "Connection", "Upgrade" },
                { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==" },
                { "Sec-WebSocket-Version", "13" },
                { "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0" },
            },
        };
        var flow = new HttpFlow(request, 1_700_000_000)
        {
            Response = new HttpResponseData
            {
                StatusCode = 101,
                Reason = "Switching Protocols",
                Headers = { { "Upgrade", "websocket" }, { "Connection", "Upgrade" }, { "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" } },
            },
            WebSocket = new WebSocketData(),
        };
        return flow;
    }

    /// <summary>A realistic mix: client pings and chat messages, server pongs and events, some binary.</summary>
    private static WebSocketMessage[] CreateMessages(int count)
    {
        var messages = new WebSocketMessage[count];
        var random = new Random(7);
        for (var i = 0; i < count; i++)
        {
            messages[i] = (i % 8) switch
            {
                0 or 1 => Text(true, $"{{\"type\":\"ping\",\"seq\":{i}}}"),
                2 or 3 => Text(false, $"{{\"type\":\"pong\",\"seq\":{i}}}"),
                4 => Text(true, $"{{\"type\":\"chat\",\"room\":\"lobby\",\"user\":{{\"id\":{i},\"name\":\"user{i}\"}},\"text\":\"hello there, this is message {i} of the benchmark\"}}"),
                5 => Text(false, $"{{\"type\":\"event\",\"payload\":{{\"items\":[{{\"id\":1,\"price\":9.5}},{{\"id\":2,\"price\":12}}],\"note\":\"{new string('x', 120)}\"}}}}"),
                6 => Binary(true, random, 64),
                _ => Binary(false, random, 200),
            };
        }

        return messages;
    }

    private static WebSocketMessage[] CreateLargeTexts()
    {
        var body = new StringBuilder("{\"type\":\"chat\",\"text\":\"");
        while (body.Length < 64 * 1024 - 20)
        {
            body.Append("lorem ipsum dolor sit amet ");
        }

        body.Append("\"}");
        return [Text(true, body.ToString()), Text(true, body.ToString().Replace("chat", "ping", StringComparison.Ordinal))];
    }

    private static WebSocketMessage Text(bool fromClient, string text) =>
        new(Opcode.Text, fromClient, Encoding.UTF8.GetBytes(text), 1_700_000_001);

    private static WebSocketMessage Binary(bool fromClient, Random random, int size)
    {
        var content = new byte[size];
        random.NextBytes(content);
        return new WebSocketMessage(Opcode.Binary, fromClient, content, 1_700_000_001);
    }
}
