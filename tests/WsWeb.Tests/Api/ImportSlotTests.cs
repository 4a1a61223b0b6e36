using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using WsWeb.Api;
using WsWeb.Tests.Dashboard;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Api;

/// <summary>A host whose import slot is waited for briefly and given up by a silent upload soon, so tests need not wait 10 and 30 s.</summary>
public sealed class ShortImportSlotWsWebApp : IAsyncLifetime
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(4);

    internal WsWebApp App { get; } = new(services => services.AddSingleton(new ImportSlot { Wait = Wait, IdleTimeout = IdleTimeout }));

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

/// <summary>One import reads and parses at a time, from its first byte: uploads side by side must not each hold a file in memory.</summary>
public sealed class ImportSlotTests(ShortImportSlotWsWebApp host) : IClassFixture<ShortImportSlotWsWebApp>
{
    private WsWebApp App => host.App;

    internal static string EmptyCapture() => """{"format": "wsweb-flows", "version": 1, "flows": []}""";

    [Fact]
    public async Task An_import_arriving_while_another_uploads_is_not_read_and_is_a_429_with_retry_after()
    {
        var first = new HalfSentContent(Encoding.UTF8.GetBytes(EmptyCapture()), sentFirst: 10);
        var firstImport = App.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), first);
        await first.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(200); // for the server to have taken the slot for the first

        using var second = new StringContent(EmptyCapture(), Encoding.UTF8, "application/json");
        using var answer = await App.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), second);
        Assert.Equal(ShortImportSlotWsWebApp.Wait, answer.Headers.RetryAfter?.Delta);
        var problem = await ApiAssert.ProblemAsync(answer, HttpStatusCode.TooManyRequests);
        Assert.Equal("Another import is in progress", problem.GetProperty("title").GetString());
        Assert.Contains("one file at a time", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // The first goes on as if nothing happened, and frees the slot at its end.
        first.SendRest();
        await ApiAssert.JsonAsync(await firstImport, HttpStatusCode.Created);
        using var third = new StringContent(EmptyCapture(), Encoding.UTF8, "application/json");
        await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), third), HttpStatusCode.Created);
    }

    [Fact]
    public async Task An_upload_that_goes_silent_is_a_408_naming_body_and_frees_the_slot()
    {
        var body = Encoding.UTF8.GetBytes(EmptyCapture());
        await using var stalled = await RawUpload.StartAsync(App.WebPort, "application/json", body.Length, body[..10]);
        var started = DateTime.UtcNow;
        var (status, text) = await stalled.ReadAnswerAsync(TimeSpan.FromSeconds(30));

        Assert.True(status == 408, $"expected 408, got {status}: {text}");
        Assert.True(DateTime.UtcNow - started >= ShortImportSlotWsWebApp.IdleTimeout - TimeSpan.FromMilliseconds(500), "the upload had its idle time");
        using var problem = JsonDocument.Parse(text);
        Assert.Contains("Nothing arrived for 4 s", problem.RootElement.GetProperty("errors").GetProperty("body")[0].GetString(), StringComparison.Ordinal);

        using var next = new StringContent(EmptyCapture(), Encoding.UTF8, "application/json");
        await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), next), HttpStatusCode.Created);
    }

    [Fact]
    public async Task An_upload_that_trickles_past_its_time_is_a_408_and_frees_the_slot()
    {
        // Never silent for the idle timeout, yet never done: the slot has a bound on the whole upload too.
        await using var app = new WsWebApp(services => services.AddSingleton(new ImportSlot { Wait = ShortImportSlotWsWebApp.Wait, IdleTimeout = TimeSpan.FromSeconds(4), MaxUploadTime = TimeSpan.FromSeconds(3) }));
        await app.InitializeAsync();
        var body = Encoding.UTF8.GetBytes(EmptyCapture());
        await using var trickle = await RawUpload.StartAsync(app.WebPort, "application/json", body.Length, body[..1]);
        var answer = trickle.ReadAnswerAsync(TimeSpan.FromSeconds(30));
        for (var i = 1; i < body.Length - 1 && !answer.IsCompleted; i++)
        {
            await Task.Delay(300);
            await trickle.SendAsync(body[i..(i + 1)]);
        }

        var (status, text) = await answer;
        Assert.True(status == 408, $"expected 408, got {status}: {text}");
        using var problem = JsonDocument.Parse(text);
        Assert.Contains("took longer than 0.05 min", problem.RootElement.GetProperty("errors").GetProperty("body")[0].GetString(), StringComparison.Ordinal);

        using var next = new StringContent(EmptyCapture(), Encoding.UTF8, "application/json");
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri("/api/flows/import", UriKind.Relative), next), HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_multipart_upload_that_goes_silent_is_a_408_too()
    {
        var form = Encoding.UTF8.GetBytes($"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.json\"\r\nContent-Type: application/json\r\n\r\n{EmptyCapture()}\r\n--XX--\r\n");
        await using var stalled = await RawUpload.StartAsync(App.WebPort, "multipart/form-data; boundary=XX", form.Length, form[..120]);
        var (status, text) = await stalled.ReadAnswerAsync(TimeSpan.FromSeconds(30));

        Assert.True(status == 408, $"expected 408, got {status}: {text}");
        using var problem = JsonDocument.Parse(text);
        Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty("body", out _));
    }

    [Fact]
    public async Task A_file_past_the_import_limit_is_a_413_naming_body()
    {
        // Declared, not sent: the answer comes before the body would.
        await using var upload = await RawUpload.StartAsync(App.WebPort, "application/json", (512L * 1024 * 1024) + 1, [], "Expect: 100-continue\r\n");
        var (status, text) = await upload.ReadAnswerAsync(TimeSpan.FromSeconds(30));

        Assert.True(status == 413, $"expected 413, got {status}: {text}");
        using var problem = JsonDocument.Parse(text);
        Assert.Equal(413, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("The file is larger than the 512 MiB an import may be.", problem.RootElement.GetProperty("errors").GetProperty("body")[0].GetString());
    }

    /// <summary>
    /// Sends the first <c>sentFirst</c> bytes of a body, then nothing until <see cref="SendRest"/> (never, if it is not
    /// called): an upload in progress, as a slow link or a client that went away makes it.
    /// </summary>
    private sealed class HalfSentContent : HttpContent
    {
        private readonly byte[] _body;
        private readonly int _sentFirst;
        private readonly TaskCompletionSource _rest = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public HalfSentContent(byte[] body, int sentFirst)
        {
            _body = body;
            _sentFirst = sentFirst;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void SendRest() => _rest.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(_body.AsMemory(0, _sentFirst), cancellationToken);
            await stream.FlushAsync(cancellationToken);
            Started.TrySetResult();
            await _rest.Task.WaitAsync(cancellationToken);
            await stream.WriteAsync(_body.AsMemory(_sentFirst), cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }

    /// <summary>
    /// An import sent by hand: its head and the start of its body, then nothing more. HttpClient reads no answer before
    /// it has sent the whole body, and the answer to a stalled upload comes before that.
    /// </summary>
    internal sealed class RawUpload : IAsyncDisposable
    {
        private readonly TcpClient _client = new();

        public static async Task<RawUpload> StartAsync(int port, string contentType, long contentLength, byte[] first, string moreHeaders = "")
        {
            var upload = new RawUpload();
            await upload._client.ConnectAsync(IPAddress.Loopback, port);
            var head = Encoding.ASCII.GetBytes($"POST /api/flows/import HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {contentType}\r\nContent-Length: {contentLength}\r\n{moreHeaders}\r\n");
            await upload._client.GetStream().WriteAsync(head);
            await upload._client.GetStream().WriteAsync(first);
            return upload;
        }

        /// <summary>The status and the (chunked) body of the answer.</summary>
        public async Task<(int Status, string Body)> ReadAnswerAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            var received = new MemoryStream();
            var buffer = new byte[4096];
            string text;
            do
            {
                var read = await _client.GetStream().ReadAsync(buffer, cancel.Token);
                if (read == 0)
                {
                    break;
                }

                received.Write(buffer, 0, read);
                text = Encoding.UTF8.GetString(received.ToArray());
            }
            while (!text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal));

            text = Encoding.UTF8.GetString(received.ToArray());
            var status = int.Parse(text.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            var chunks = text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
            var body = new StringBuilder();
            while (chunks.IndexOf("\r\n", StringComparison.Ordinal) is var end and > 0)
            {
                var size = Convert.ToInt32(chunks[..end], 16);
                if (size == 0)
                {
                    break;
                }

                body.Append(chunks.AsSpan(end + 2, size));
                chunks = chunks[(end + 2 + size + 2)..];
            }

            return (status, body.ToString());
        }

        /// <summary>Sends more of the body.</summary>
        public async Task SendAsync(byte[] more) => await _client.GetStream().WriteAsync(more);

        public ValueTask DisposeAsync()
        {
            _client.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>The dashboard's import form while another import holds the slot.</summary>
[Collection("dashboard-browser")]
public sealed class ImportSlotFormTests
{
    [RequiresChromiumFact]
    public async Task The_import_form_shows_the_429_problem()
    {
        var browser = new DashboardBrowser(new WsWebApp(services => services.AddSingleton(new ImportSlot { Wait = TimeSpan.FromSeconds(1), IdleTimeout = TimeSpan.FromMinutes(5) })));
        await browser.InitializeAsync();
        try
        {
            // Another import, its head and the start of its body sent, holds the slot.
            await using var holder = await ImportSlotTests.RawUpload.StartAsync(browser.App.WebPort, "application/json", 1000, Encoding.UTF8.GetBytes("{\"format\""));

            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/export");
            await page.SetInputFilesAsync("#import-form input[type=file]", new FilePayload { Name = "capture.json", MimeType = "application/json", Buffer = Encoding.UTF8.GetBytes(ImportSlotTests.EmptyCapture()) });
            await page.Locator("#import-form button[type=submit]").ClickAsync();

            var problem = page.Locator("#import-form .problem");
            await Expect(problem).ToContainTextAsync("Another import is in progress");
            await Expect(problem).ToContainTextAsync("(429)");
            await Expect(problem).ToContainTextAsync("one file at a time");
            await Expect(page.Locator("#import-form button[type=submit]")).ToBeEnabledAsync();
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }
}
