using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;
using WsWeb.Core.WebSockets;
using Xunit.Abstractions;

namespace WsWeb.Core.Tests.Formats;

/// <summary>
/// Checks our flow files against the real mitmproxy (Debian's 8.1.1, format version 17): it must read what
/// we write, byte for byte, and we must read what it captures.
/// </summary>
public sealed class MitmproxyInteropTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("wsweb-mitm-");

    public void Dispose() => _dir.Delete(recursive: true);

    // Dumps every flow the addon sees once mitmdump has replayed the file through its hooks.
    private const string DumpAddon = """
        import json, os

        seen = {}

        def _track(flow):
            seen.setdefault(flow.id, flow)

        def request(flow): _track(flow)
        def response(flow): _track(flow)
        def error(flow): _track(flow)
        def websocket_end(flow): _track(flow)

        def _hex(b):
            return None if b is None else b.hex()

        def _addr(a):
            return None if not a else [a[0], a[1]]

        def _conn(c):
            return {
                "id": c.id, "peername": _addr(c.peername), "sockname": _addr(c.sockname),
                "sni": c.sni, "tls_version": c.tls_version, "cipher": c.cipher,
                "alpn": _hex(c.alpn), "tls_established": c.tls_established,
                "timestamp_start": repr(c.timestamp_start), "timestamp_tls_setup": repr(c.timestamp_tls_setup),
                "timestamp_end": repr(c.timestamp_end), "error": c.error,
                "certificate_cns": [x.cn for x in c.certificate_list],
            }

        def done():
            result = []
            for f in seen.values():
                d = {
                    "id": f.id, "marked": f.marked, "is_replay": f.is_replay, "timestamp_created": repr(f.timestamp_created),
                    "error": f.error.msg if f.error else None,
                    "method": f.request.method, "scheme": f.request.scheme, "host": f.request.host,
                    "port": f.request.port, "path": f.request.path, "http_version": f.request.http_version,
                    "request_headers": [[k.hex(), v.hex()] for k, v in f.request.headers.fields],
                    "request_content": _hex(f.request.raw_content),
                    "request_timestamp_start": repr(f.request.timestamp_start),
                    "status": f.response.status_code if f.response else None,
                    "response_content": _hex(f.response.raw_content) if f.response else None,
                    "client": _conn(f.client_conn), "server": _conn(f.server_conn),
                    "server_address": _addr(f.server_conn.address),
                    "metadata": f.metadata,
                    "websocket": None,
                }
                if f.websocket:
                    ws = f.websocket
                    d["websocket"] = {
                        "messages": [
                            {"from_client": m.from_client, "type": int(m.type), "content": m.content.hex(),
                             "timestamp": repr(m.timestamp), "dropped": m.dropped, "injected": m.injected}
                            for m in ws.messages
                        ],
                        "closed_by_client": ws.closed_by_client, "close_code": ws.close_code,
                        "close_reason": ws.close_reason, "timestamp_end": repr(ws.timestamp_end),
                    }
                result.append(d)
            with open(os.environ["WSWEB_OUT"], "w") as fh:
                json.dump(result, fh)
        """;

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task Mitmdump_replays_our_version_17_file_byte_for_byte()
    {
        var flows = SampleFlows.All();
        var file = Path.Combine(_dir.FullName, "ours.mitm");
        await using (var stream = File.Create(file))
        {
            FlowFormats.Export(flows, FlowFormat.Mitmproxy, stream);
        }

        var addon = WriteScript("dump.py", DumpAddon);
        var dump = Path.Combine(_dir.FullName, "dump.json");
        var (exit, stdout, stderr) = await RunAsync(
            ExternalTools.MitmdumpPath!,
            ["-n", "-q", "--set", $"confdir={_dir.FullName}", "-r", file, "-s", addon],
            new() { ["WSWEB_OUT"] = dump });
        Assert.True(exit == 0, $"mitmdump exited with {exit}\n{stdout}\n{stderr}");
        Assert.True(File.Exists(dump), $"the addon wrote nothing\n{stdout}\n{stderr}");
        Assert.DoesNotContain("Traceback", stderr + stdout, StringComparison.Ordinal);

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(dump));
        var seen = doc.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!);
        Assert.Equal(flows.Count, seen.Count);
        foreach (var flow in flows)
        {
            var d = seen[flow.Id];
            Assert.Equal(flow.Request.Method, d.GetProperty("method").GetString());
            Assert.Equal(flow.Request.Scheme, d.GetProperty("scheme").GetString());
            Assert.Equal(flow.Request.Host, d.GetProperty("host").GetString());
            Assert.Equal(flow.Request.Port, d.GetProperty("port").GetInt32());
            Assert.Equal(flow.Request.Path, d.GetProperty("path").GetString());
            Assert.Equal(flow.Request.HttpVersion, d.GetProperty("http_version").GetString());
            Assert.Equal(
                flow.Request.Headers.Select(h => $"{Hex(h.Key)}={Hex(h.Value)}"),
                d.GetProperty("request_headers").EnumerateArray().Select(p => $"{p[0].GetString()}={p[1].GetString()}"));
            Assert.Equal(flow.Request.Content is null ? null : Convert.ToHexStringLower(flow.Request.Content), d.GetProperty("request_content").GetString());
            Assert.Equal(PythonFloat.Repr(flow.Request.TimestampStart), d.GetProperty("request_timestamp_start").GetString());
            Assert.Equal(PythonFloat.Repr(flow.TimestampCreated), d.GetProperty("timestamp_created").GetString());
            Assert.Equal(flow.Marked, d.GetProperty("marked").GetString());
            Assert.Equal(flow.IsReplay, d.GetProperty("is_replay").GetString());
            Assert.Equal(flow.Error, d.GetProperty("error").GetString());
            Assert.Equal(flow.Response?.StatusCode, d.GetProperty("status").ValueKind == JsonValueKind.Null ? null : d.GetProperty("status").GetInt32());
            Assert.Equal(flow.ClientConn.Id, d.GetProperty("client").GetProperty("id").GetString());
            Assert.Equal(flow.ServerConn.Id, d.GetProperty("server").GetProperty("id").GetString());
            Assert.Equal(flow.ServerConn.Error, d.GetProperty("server").GetProperty("error").GetString());

            if (flow.WebSocket is not { } ws)
            {
                Assert.Equal(JsonValueKind.Null, d.GetProperty("websocket").ValueKind);
                continue;
            }

            var theirs = d.GetProperty("websocket");
            var messages = theirs.GetProperty("messages").EnumerateArray().ToList();
            Assert.Equal(ws.Messages.Count, messages.Count);
            for (var i = 0; i < messages.Count; i++)
            {
                var m = ws.Messages[i];
                var t = messages[i];
                Assert.Equal(m.FromClient, t.GetProperty("from_client").GetBoolean());
                Assert.Equal((int)m.Type, t.GetProperty("type").GetInt32());
                Assert.Equal(Convert.ToHexStringLower(m.Content), t.GetProperty("content").GetString());
                Assert.Equal(PythonFloat.Repr(m.Timestamp), t.GetProperty("timestamp").GetString());
                Assert.Equal(m.Dropped, t.GetProperty("dropped").GetBoolean());
                Assert.Equal(m.Injected, t.GetProperty("injected").GetBoolean());
            }

            Assert.True(theirs.GetProperty("closed_by_client").GetBoolean());
            Assert.Equal(4001, theirs.GetProperty("close_code").GetInt32());
            Assert.Equal("bye", theirs.GetProperty("close_reason").GetString());
            Assert.Equal(PythonFloat.Repr(ws.TimestampEnd!.Value), theirs.GetProperty("timestamp_end").GetString());

            var client = d.GetProperty("client");
            Assert.Equal(["127.0.0.1", "51234"], client.GetProperty("peername").EnumerateArray().Select(e => e.ToString()));
            Assert.Equal("TLSv1.3", client.GetProperty("tls_version").GetString());
            Assert.Equal(flow.ClientConn.Cipher, client.GetProperty("cipher").GetString());
            Assert.Equal(Convert.ToHexStringLower(Encoding.ASCII.GetBytes("http/1.1")), client.GetProperty("alpn").GetString());
            Assert.True(client.GetProperty("tls_established").GetBoolean());
            var server = d.GetProperty("server");
            Assert.Equal(["::1", "8443"], server.GetProperty("peername").EnumerateArray().Select(e => e.ToString()));
            Assert.Equal(["echo.example", "8443"], d.GetProperty("server_address").EnumerateArray().Select(e => e.ToString()));
            Assert.Equal(["echo.example"], server.GetProperty("certificate_cns").EnumerateArray().Select(e => e.GetString()));
            Assert.True(d.GetProperty("metadata").GetProperty("wsweb").TryGetProperty("originals", out _));
            Assert.Equal(flow.ReplayOf, d.GetProperty("metadata").GetProperty("wsweb").GetProperty("replay_of").GetString());
        }
    }

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task A_client_replay_by_mitmdump_imports_as_a_replayed_request()
    {
        var serverScript = WriteScript("server.py", """
            import http.server

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = b"answer to " + self.path.encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """);
        using var server = Start(ExternalTools.PythonPath, [serverScript]);
        try
        {
            var portLine = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(int.TryParse(portLine, out var port), $"server said '{portLine}': {await ReadAvailableError(server)}");

            // A recorded request of ours, sent again by mitmdump -C; it leaves once the replay is done.
            var recorded = new HttpFlow(
                new HttpRequestData
                {
                    Method = "GET",
                    Scheme = "http",
                    Host = "127.0.0.1",
                    Port = port,
                    Path = "/again?n=1",
                    Headers = [new("Host", $"127.0.0.1:{port}")],
                    Content = [],
                    TimestampStart = SampleFlows.T0,
                    TimestampEnd = SampleFlows.T0,
                },
                SampleFlows.T0)
            {
                Id = "a1b2c3d4-0000-4000-8000-00000000000c",
            };
            var input = Path.Combine(_dir.FullName, "recorded.mitm");
            var replayed = Path.Combine(_dir.FullName, "replayed.mitm");
            await File.WriteAllBytesAsync(input, RoundTripTests.Export([recorded], FlowFormat.Mitmproxy));
            var (exit, stdout, stderr) = await RunAsync(
                ExternalTools.MitmdumpPath!,
                ["-n", "--set", $"confdir={_dir.FullName}", "-C", input, "-w", replayed]);
            Assert.True(exit == 0, $"mitmdump exited with {exit}\n{stdout}\n{stderr}");

            var result = RoundTripTests.Import(await File.ReadAllBytesAsync(replayed));

            // mitmproxy replays a flow in place: same id, is_replay "request", and no record of an original.
            var flow = Assert.Single(result.Flows);
            Assert.Equal(recorded.Id, flow.Id);
            Assert.Equal("request", flow.IsReplay);
            Assert.Null(flow.ReplayOf);
            Assert.Equal(200, flow.Response!.StatusCode);
            Assert.Equal("answer to /again?n=1", Encoding.UTF8.GetString(flow.Response.Content!));
            Assert.True(FlowFilter.Parse("~replay & ~replayq & !~replays").Matches(flow));
            foreach (var format in new[] { FlowFormat.Json, FlowFormat.Har, FlowFormat.Mitmproxy })
            {
                FlowAssert.Equal(flow, RoundTripTests.Import(RoundTripTests.Export([flow], format)).Flows[0]);
            }
        }
        finally
        {
            KillIfRunning(server);
        }
    }

    [RequiresToolFact(ExternalTools.PythonMitmproxy)]
    public async Task Mitmproxys_own_reader_and_writer_round_trip_our_file_exactly()
    {
        // mitmproxy.io.FlowReader is strict (set_state pops every key and rejects unknown ones); its
        // FlowWriter then writes the flows again, and reading that back must give our flows unchanged.
        var flows = SampleFlows.All();
        var ours = Path.Combine(_dir.FullName, "ours.mitm");
        var theirs = Path.Combine(_dir.FullName, "theirs.mitm");
        await File.WriteAllBytesAsync(ours, RoundTripTests.Export(flows, FlowFormat.Mitmproxy));
        var script = WriteScript("rewrite.py", """
            import sys
            from mitmproxy import io
            with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
                writer = io.FlowWriter(dst)
                n = 0
                for flow in io.FlowReader(src).stream():
                    writer.add(flow)
                    n += 1
            print(n)
            """);

        var (exit, stdout, stderr) = await RunAsync(ExternalTools.PythonPath, [script, ours, theirs]);

        Assert.True(exit == 0, $"python exited with {exit}\n{stdout}\n{stderr}");
        Assert.Equal("3", stdout.Trim());
        var result = RoundTripTests.Import(await File.ReadAllBytesAsync(theirs));
        Assert.Equal(flows.Count, result.Flows.Count);
        for (var i = 0; i < flows.Count; i++)
        {
            FlowAssert.Equal(flows[i], result.Flows[i]);
        }
    }

    [RequiresToolFact(ExternalTools.Mitmdump, ExternalTools.PythonWebsockets)]
    public async Task A_capture_made_by_mitmdump_imports_intact()
    {
        var capture = Path.Combine(_dir.FullName, "capture.mitm");
        var echoScript = WriteScript("echo.py", """
            import asyncio, websockets

            async def echo(ws, path=None):
                async for message in ws:
                    await ws.send(message)

            async def main():
                async with websockets.serve(echo, "127.0.0.1", 0) as server:
                    print(server.sockets[0].getsockname()[1], flush=True)
                    await asyncio.Future()

            asyncio.run(main())
            """);
        var clientScript = WriteScript("client.py", """
            import asyncio, sys, websockets

            async def main():
                async with websockets.connect(sys.argv[1]) as ws:
                    await ws.send("hello ✓")
                    assert await ws.recv() == "hello ✓"
                    await ws.send(bytes([0x00, 0x80, 0xFF, 0x41]))
                    assert await ws.recv() == bytes([0x00, 0x80, 0xFF, 0x41])
                    await ws.close(code=4001, reason="bye")
                print("ok", flush=True)

            asyncio.run(main())
            """);

        var started = Timestamps.Now(TimeProvider.System);
        using var echo = Start(ExternalTools.PythonPath, [echoScript]);
        Process? mitmdump = null;
        try
        {
            var echoPortLine = await echo.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(int.TryParse(echoPortLine, out var echoPort), $"echo server said '{echoPortLine}': {await ReadAvailableError(echo)}");
            mitmdump = Start(ExternalTools.MitmdumpPath!, [
                "--listen-host", "127.0.0.1", "--listen-port", "0",
                "--mode", $"reverse:http://127.0.0.1:{echoPort}",
                "--set", $"confdir={_dir.FullName}",
                "-w", capture]);
            var proxyPort = await ListeningPortAsync(mitmdump, TimeSpan.FromSeconds(60));
            var mitmdumpOutput = mitmdump.StandardOutput.ReadToEndAsync();
            var (exit, stdout, stderr) = await RunAsync(ExternalTools.PythonPath, [clientScript, $"ws://127.0.0.1:{proxyPort}/chat"]);
            Assert.True(exit == 0 && stdout.Trim() == "ok", $"client exited with {exit}\n{stdout}\n{stderr}");

            // mitmdump writes the flow when the WebSocket ends and flushes on shutdown: stop it politely.
            await StopAsync(mitmdump, TimeSpan.FromSeconds(30));
            output.WriteLine($"mitmdump stdout: {await mitmdumpOutput}");
        }
        finally
        {
            KillIfRunning(mitmdump);
            KillIfRunning(echo);
            mitmdump?.Dispose();
        }

        var ended = Timestamps.Now(TimeProvider.System);
        var bytes = await File.ReadAllBytesAsync(capture);
        output.WriteLine($"capture: {bytes.Length} bytes");
        var result = RoundTripTests.Import(bytes);

        Assert.Equal(FlowFormat.Mitmproxy, result.Format);
        Assert.Equal(0, result.Skipped);
        var flow = Assert.Single(result.Flows);
        FlowAssert.Imported(flow);
        Assert.Equal("GET", flow.Request.Method);
        Assert.Equal("/chat", flow.Request.Path);
        Assert.Equal(101, flow.Response!.StatusCode);
        Assert.Equal("websocket", flow.Request.Headers["Upgrade"], StringComparer.OrdinalIgnoreCase);
        var ws = flow.WebSocket!;
        Assert.Equal(4, result.MessageCount);
        Assert.Collection(
            ws.Messages,
            m => AssertMessage(m, Opcode.Text, fromClient: true, Encoding.UTF8.GetBytes("hello ✓")),
            m => AssertMessage(m, Opcode.Text, fromClient: false, Encoding.UTF8.GetBytes("hello ✓")),
            m => AssertMessage(m, Opcode.Binary, fromClient: true, [0x00, 0x80, 0xFF, 0x41]),
            m => AssertMessage(m, Opcode.Binary, fromClient: false, [0x00, 0x80, 0xFF, 0x41]));
        for (var i = 0; i < ws.Messages.Count; i++)
        {
            var m = ws.Messages[i];
            Assert.Equal(i, m.Index);
            Assert.InRange(m.Timestamp, started - 1, ended + 1);
            Assert.True(i == 0 || m.Timestamp >= ws.Messages[i - 1].Timestamp);
            Assert.False(m.Dropped);
            Assert.False(m.Injected);
        }

        Assert.True(ws.ClosedByClient);
        Assert.Equal(4001, ws.CloseCode);
        Assert.Equal("bye", ws.CloseReason);
        Assert.InRange(ws.TimestampEnd!.Value, ws.Messages[^1].Timestamp, ended + 1);
        Assert.StartsWith("127.0.0.1:", flow.ClientConn.PeerName, StringComparison.Ordinal);

        // And what we read from mitmproxy survives our own formats exactly.
        foreach (var format in new[] { FlowFormat.Json, FlowFormat.Har, FlowFormat.Mitmproxy })
        {
            FlowAssert.Equal(flow, RoundTripTests.Import(RoundTripTests.Export([flow], format)).Flows[0]);
        }
    }

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task A_file_cut_short_or_padded_loads_the_same_flows_as_mitmdump_does()
    {
        var flows = SampleFlows.All();
        var whole = RoundTripTests.Export(flows, FlowFormat.Mitmproxy);
        var lastAt = whole.Length - RoundTripTests.Export([flows[^1]], FlowFormat.Mitmproxy).Length;
        var cases = new (string Name, byte[] Data, int Expected)[]
        {
            ("cut.mitm", whole[..(lastAt + (whole.Length - lastAt) / 2)], flows.Count - 1),
            ("padded.mitm", [.. whole, (byte)'\n', 0, 0], flows.Count),
        };

        foreach (var (name, data, expected) in cases)
        {
            var file = Path.Combine(_dir.FullName, name);
            await File.WriteAllBytesAsync(file, data);
            var (_, stdout, stderr) = await RunAsync(ExternalTools.MitmdumpPath!, ["-n", "--set", $"confdir={_dir.FullName}", "-r", file]);
            Assert.Contains($"Flow file corrupted - loaded {expected} flows.", stdout + stderr, StringComparison.Ordinal);

            var result = RoundTripTests.Import(data);
            Assert.Equal(flows.Take(expected).Select(f => f.Id), result.Flows.Select(f => f.Id));
            Assert.Contains($"byte {lastAt + (name == "cut.mitm" ? 0 : whole.Length - lastAt)}", Assert.Single(result.Warnings), StringComparison.Ordinal);
        }
    }

    private static void AssertMessage(WebSocketMessage m, Opcode type, bool fromClient, byte[] content)
    {
        Assert.Equal(type, m.Type);
        Assert.Equal(fromClient, m.FromClient);
        Assert.Equal(content, m.Content);
    }

    private static string Hex(string s) => Convert.ToHexStringLower(Encoding.UTF8.GetBytes(s));

    private string WriteScript(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    private Process Start(string file, string[] args, Dictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dir.FullName,
        };
        info.Environment["HOME"] = _dir.FullName;
        foreach (var (key, value) in env ?? [])
        {
            info.Environment[key] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
    }

    private async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, string[] args, Dictionary<string, string>? env = null)
    {
        using var process = Start(file, args, env);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish in 120 s");
        }

        var result = (process.ExitCode, await stdout, await stderr);
        Trace($"$ {file} {string.Join(' ', args)} -> {result.ExitCode}\n{result.Item2}\n{result.Item3}");
        return result;
    }

    private void Trace(string line)
    {
        output.WriteLine(line);
    }

    /// <summary>
    /// The port mitmdump listens on, from its "listening at 127.0.0.1:PORT" line. It is given port 0 and picks a free
    /// one itself: a port found free beforehand could be taken by someone else before mitmdump binds it.
    /// </summary>
    private static async Task<int> ListeningPortAsync(Process process, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException($"mitmdump said nothing of listening within {timeout}");
            }

            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(remaining);
            if (line is null)
            {
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                Assert.Fail($"mitmdump exited early with {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
            }

            var listening = Regex.Match(line, @"listening at \S*:(\d+)");
            if (listening.Success)
            {
                return int.Parse(listening.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    private async Task StopAsync(Process process, TimeSpan timeout)
    {
        // SIGINT is mitmdump's orderly shutdown (it runs the done hooks and closes the -w file).
        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill!.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        output.WriteLine($"mitmdump stderr: {await process.StandardError.ReadToEndAsync()}");
    }

    private static void KillIfRunning(Process? process)
    {
        try
        {
            if (process is { HasExited: false })
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static async Task<string> ReadAvailableError(Process process) =>
        process.HasExited ? await process.StandardError.ReadToEndAsync() : "(still running)";
}
