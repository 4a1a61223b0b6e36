using System.Net.WebSockets;
using System.Text.Json;
using WsWeb.Core.Formats;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>A capture made through WsWeb, exported over REST, read by the real mitmproxy (Debian's 8.1.1).</summary>
public sealed class MitmdumpCaptureTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    private const string PrintAddon = """
        import json, os
        seen = []
        def websocket_end(flow):
            ws = flow.websocket
            seen.append({
                "id": flow.id,
                "messages": [[m.from_client, int(m.type), m.content.hex(), repr(m.timestamp), m.dropped, m.injected] for m in ws.messages],
                "closed_by_client": ws.closed_by_client, "close_code": ws.close_code, "close_reason": ws.close_reason,
            })
        def done():
            with open(os.environ["WSWEB_OUT"], "w") as f:
                json.dump(seen, f)
        """;

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task MitmdumpPrintsEveryCapturedMessageByteForByte()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync("héllo through WsWeb");
            await client.ReceiveTextAsync();
            await client.SendBinaryAsync([0x00, 0xff, 0xfe, 0x80, 0x7f]);
            await client.ReceiveAsync();
            await client.CloseAsync((WebSocketCloseStatus)4001, "bye");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        var bytes = await (await app.Api.GetAsync($"/api/flows/{flow.Id}/export?format=mitmproxy")).Content.ReadAsByteArrayAsync();
        var dir = Directory.CreateTempSubdirectory("wsweb-mitmdump-");
        try
        {
            var file = Path.Combine(dir.FullName, "capture.mitm");
            await File.WriteAllBytesAsync(file, bytes);
            var script = Path.Combine(dir.FullName, "print.py");
            await File.WriteAllTextAsync(script, PrintAddon);
            var output = Path.Combine(dir.FullName, "seen.json");

            var (exitCode, stdout, stderr) = await ExternalTools.RunMitmdumpAsync(
                ["-n", "-q", "--set", $"confdir={dir.FullName}", "-r", file, "-s", script], new Dictionary<string, string> { ["WSWEB_OUT"] = output });
            Assert.True(exitCode == 0, $"mitmdump failed: {stdout}\n{stderr}");

            using var seen = JsonDocument.Parse(await File.ReadAllTextAsync(output));
            var theirs = Assert.Single(seen.RootElement.EnumerateArray());
            Assert.Equal(flow.Id, theirs.GetProperty("id").GetString());
            var ours = flow.WebSocket!.Messages;
            var printed = theirs.GetProperty("messages").EnumerateArray().ToList();
            Assert.Equal(ours.Count, printed.Count);
            for (var i = 0; i < ours.Count; i++)
            {
                Assert.Equal(ours[i].FromClient, printed[i][0].GetBoolean());
                Assert.Equal((int)ours[i].Type, printed[i][1].GetInt32());
                Assert.Equal(Convert.ToHexStringLower(ours[i].Content), printed[i][2].GetString());
                Assert.Equal(PythonFloat.Repr(ours[i].Timestamp), printed[i][3].GetString());
                Assert.Equal(ours[i].Dropped, printed[i][4].GetBoolean());
                Assert.Equal(ours[i].Injected, printed[i][5].GetBoolean());
            }

            Assert.True(theirs.GetProperty("closed_by_client").GetBoolean());
            Assert.Equal(4001, theirs.GetProperty("close_code").GetInt32());
            Assert.Equal("bye", theirs.GetProperty("close_reason").GetString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
