using System.Net.WebSockets;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;
using WsWeb.Recording;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Recording;

/// <summary>
/// mitmproxy's -w and -r: flows written to a mitmproxy file as they end, and loaded from one at start. Real hosts, real
/// WebSockets through the proxy, the file read back by WsWeb's reader and by the real mitmdump.
/// </summary>
public sealed class FlowFilesTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "wsweb-flowfiles-" + Guid.NewGuid().ToString("N"));
    private readonly WsWebApps _apps = new();

    private string FlowFile => Path.Combine(_directory, "sessions", "capture.mitm");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _apps.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private Task<WsWebApp> StartAsync(Func<WsWeb.Proxy.ProxyOptions, WsWeb.Proxy.ProxyOptions> configure) => _apps.StartAsync(configure);

    /// <summary>A WebSocket through the proxy that sends <paramref name="text"/>, gets its echo and closes; returns its flow once ended.</summary>
    private static async Task<HttpFlow> ExchangeAsync(WsWebApp app, string text)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using (client)
        {
            await client.SendTextAsync(text);
            Assert.Equal(text, await client.ReceiveTextAsync());
            await client.CloseAsync((WebSocketCloseStatus)4001, "bye");
        }

        await Eventually.AssertAsync(() => !flow.IsLive, "the flow ended");
        return flow;
    }

    private List<HttpFlow> ReadBack() => [.. FlowFormats.Import(File.ReadAllBytes(FlowFile)).Flows];

    /// <summary>The flows in the file so far: none while it is empty (made, nothing written yet) or a flow is half written.</summary>
    private List<HttpFlow> WrittenSoFar()
    {
        try
        {
            return File.Exists(FlowFile) && new FileInfo(FlowFile).Length > 0 ? ReadBack() : [];
        }
        catch (FlowFormatException)
        {
            return [];
        }
    }

    [Fact]
    public async Task Each_flow_is_written_as_it_ends_owner_only_in_a_directory_made_for_it()
    {
        var app = await StartAsync(o => o with { SaveStreamFile = FlowFile });

        var first = await ExchangeAsync(app, "first one");
        await Eventually.AssertAsync(() => WrittenSoFar().Any(f => f.Id == first.Id), "the first flow is in the file while WsWeb runs");
        var second = await ExchangeAsync(app, "second one");
        await Eventually.AssertAsync(() => WrittenSoFar().Count == 2, "the second flow follows it");

        // The export page says where the session goes.
        var exportPage = await app.Api.GetStringAsync(new Uri("/export", UriKind.Relative));
        Assert.Contains("id=\"stream-file\"", exportPage, StringComparison.Ordinal);
        Assert.Contains(FlowFile, exportPage, StringComparison.Ordinal);

        var written = ReadBack().Single(f => f.Id == second.Id);
        Assert.Equal(["second one", "second one"], written.WebSocket!.Messages.Select(m => m.Text));
        Assert.Equal(4001, written.WebSocket.CloseCode);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(FlowFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(FlowFile)!));
        }
    }

    [Fact]
    public async Task A_stream_file_started_anew_over_an_older_one_is_owner_only_too()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(FlowFile)!);
        await File.WriteAllTextAsync(FlowFile, "an older session");
        File.SetUnixFileMode(FlowFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        await StartAsync(o => o with { SaveStreamFile = FlowFile });

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(FlowFile));
        Assert.Equal(0, new FileInfo(FlowFile).Length);
    }

    [Fact]
    public async Task The_filter_chooses_the_flows_written()
    {
        var app = await StartAsync(o => o with { SaveStreamFile = FlowFile, SaveStreamFilter = "~websocket & ~b keep" });

        var skipped = await ExchangeAsync(app, "not this one");
        var kept = await ExchangeAsync(app, "keep this one");

        await Eventually.AssertAsync(() => WrittenSoFar().Count == 1, "one flow is written");
        Assert.Equal(kept.Id, ReadBack().Single().Id);
        Assert.DoesNotContain(ReadBack(), f => f.Id == skipped.Id);
    }

    [Fact]
    public async Task A_websocket_still_open_at_shutdown_is_written_as_it_ended()
    {
        var app = await StartAsync(o => o with { SaveStreamFile = FlowFile });
        var (client, _, flow) = await app.ConnectAsync();
        await client.SendTextAsync("still open");
        Assert.Equal("still open", await client.ReceiveTextAsync());

        await app.DisposeAsync();
        await client.DisposeAsync();

        var written = Assert.Single(ReadBack());
        Assert.Equal(flow.Id, written.Id);
        Assert.Equal(1001, written.WebSocket!.CloseCode);
        Assert.Equal(2, written.WebSocket.Messages.Count);
    }

    [Fact]
    public async Task Reading_and_writing_one_file_carries_a_session_on_and_plus_appends()
    {
        var before = await StartAsync(o => o with { SaveStreamFile = FlowFile });
        var older = await ExchangeAsync(before, "first of the first run");
        var old = await ExchangeAsync(before, "from the first run");
        await before.DisposeAsync();

        // -r capture.mitm -w capture.mitm: the loaded flows are written back before anything else.
        var again = await StartAsync(o => o with { ReadFile = FlowFile, SaveStreamFile = FlowFile });
        var loaded = again.Store.Get(old.Id);
        Assert.NotNull(loaded);
        Assert.True(loaded.IsImported);
        Assert.Equal("from the first run", loaded.WebSocket!.Messages[0].Text);
        var added = await ExchangeAsync(again, "from the second run");
        await again.DisposeAsync();
        Assert.Equal([older.Id, old.Id, added.Id], ReadBack().Select(f => f.Id));   // in their order, not reversed

        // +path: the file grows instead of starting anew.
        var third = await StartAsync(o => o with { SaveStreamFile = FlowFile, SaveStreamAppend = true });
        var appended = await ExchangeAsync(third, "from the third run");
        await third.DisposeAsync();
        Assert.Equal([older.Id, old.Id, added.Id, appended.Id], ReadBack().Select(f => f.Id));
    }

    [RequiresToolFact(ExternalTools.Mitmdump)]
    public async Task Mitmdump_reads_the_file_while_wsweb_is_still_writing_it()
    {
        var app = await StartAsync(o => o with { SaveStreamFile = FlowFile });
        await ExchangeAsync(app, "read by mitmdump");
        await Eventually.AssertAsync(() => WrittenSoFar().Count == 1, "the flow is written");

        var confdir = Path.Combine(_directory, "mitmproxy");
        var (exitCode, stdout, stderr) = await ExternalTools.RunMitmdumpAsync(["-n", "--flow-detail", "3", "--set", $"confdir={confdir}", "-r", FlowFile]);

        Assert.True(exitCode == 0, $"mitmdump failed: {stdout}\n{stderr}");
        Assert.Contains("read by mitmdump", stdout, StringComparison.Ordinal);
        Assert.Contains("WebSocket text message", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_read_file_that_is_not_a_flow_file_stops_the_start_naming_the_option()
    {
        Directory.CreateDirectory(_directory);
        var notFlows = Path.Combine(_directory, "notes.txt");
        await File.WriteAllTextAsync(notFlows, "just some notes");

        var app = new WsWebApp(o => o with { ReadFile = notFlows });
        _apps.Add(app);
        var refused = await Assert.ThrowsAsync<FlowFileException>(app.InitializeAsync);

        Assert.StartsWith($"--rfile: {notFlows} cannot be loaded: ", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_file_that_cannot_be_made_stops_the_start_naming_the_option()
    {
        Directory.CreateDirectory(_directory);
        var aFile = Path.Combine(_directory, "a-file");
        await File.WriteAllTextAsync(aFile, "");
        var underAFile = Path.Combine(aFile, "capture.mitm");

        var app = new WsWebApp(o => o with { SaveStreamFile = underAFile });
        _apps.Add(app);
        var refused = await Assert.ThrowsAsync<FlowFileException>(app.InitializeAsync);

        Assert.StartsWith($"--save-stream-file: {underAFile} cannot be written: ", refused.Message, StringComparison.Ordinal);
    }
}
