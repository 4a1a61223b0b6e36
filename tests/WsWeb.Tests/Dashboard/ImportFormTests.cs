using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;
using WsWeb.Tests.Api;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The import form while the server is still reading a capture it has received, and what it says once it has.</summary>
[Collection("dashboard-browser")]
public sealed class ImportFormTests
{
    [RequiresChromiumFact]
    public async Task Import_says_it_is_processing_once_uploaded_and_cannot_be_sent_twice()
    {
        var hold = new HoldImports();
        var browser = new DashboardBrowser(new WsWebApp(services => services.AddSingleton<IStartupFilter>(hold)));
        await browser.InitializeAsync();
        try
        {
            var app = browser.App;
            var (client, _, flow) = await app.ConnectAsync();
            await using (client)
            {
                await client.SendTextAsync("to be imported");
                await client.ReceiveTextAsync();
            }

            using var exported = await app.Api.GetAsync($"/api/flows/{flow.Id}/export?format=har");
            var importedId = Guid.NewGuid().ToString();
            var har = (await exported.Content.ReadAsStringAsync()).Replace(flow.Id, importedId, StringComparison.Ordinal);

            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/export");
            var submit = page.Locator("#import-form button[type=submit]");
            var result = page.Locator("#import-form .action-result");
            await page.SetInputFilesAsync("#import-form input[type=file]", new FilePayload { Name = "capture.har", MimeType = "application/json", Buffer = System.Text.Encoding.UTF8.GetBytes(har) });
            await submit.ClickAsync();
            await hold.Received.Task.WaitAsync(TimeSpan.FromSeconds(30));

            // The server has all of it and has not answered (a large capture takes seconds to read): the form says
            // so, and Import cannot be pressed again.
            await Expect(result).ToHaveTextAsync("Uploaded; processing…");
            Assert.Equal(1.0, await page.EvalOnSelectorAsync<double>("#import-form progress", "p => p.value"));
            await Expect(submit).ToBeDisabledAsync();

            // A submit that gets through anyway (Enter in the form, a script) does not send the file again.
            await page.EvalOnSelectorAsync("#import-form", "form => form.requestSubmit()");
            hold.Release.SetResult();
            await Expect(result).ToContainTextAsync("Imported 1 flows (2 messages) from har");
            await Expect(submit).ToBeEnabledAsync();
            Assert.Equal(1, Volatile.Read(ref hold.Count));
            Assert.NotNull(app.Store.Get(importedId));
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }

    [RequiresChromiumFact]
    public async Task Import_lists_what_did_not_fit_as_warnings_until_the_next_import()
    {
        var browser = new DashboardBrowser(new WsWebApp(options => options with { MaxMessagesPerFlow = 4 }));
        await browser.InitializeAsync();
        try
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(browser.BaseUrl + "/export");
            var result = page.Locator("#import-form .action-result");
            var warnings = page.Locator("#import-form .import-warnings .alert-warning");
            var problem = page.Locator("#import-form .problem .alert-danger");

            // Each file has new flow ids: one already in the store would be counted, not imported again.
            async Task ImportAsync(string file)
            {
                await page.SetInputFilesAsync("#import-form input[type=file]", new FilePayload { Name = "flows.json", MimeType = "application/json", Buffer = System.Text.Encoding.UTF8.GetBytes(file) });
                await page.ClickAsync("#import-form button[type=submit]");
            }

            string Flow(string id, int messages) =>
                ExportApiTests.FlowJson(JsonSerializer.Serialize(id), $$"""{"messages":{{ExportApiTests.Messages([.. Enumerable.Range(0, messages).Select(i => $"m{i}")])}}}""");
            string Json(params string[] flows) => $$"""{"format":"wsweb-flows","version":1,"flows":[{{string.Join(",", flows)}}]}""";

            // Everything fits: the counts, and no warning box. The report is on the page once its counts are, so
            // there is no box still to come.
            await ImportAsync(Json(Flow(Guid.NewGuid().ToString(), 3)));
            await Expect(result).ToHaveTextAsync("Imported 1 flows (3 messages) from json.");
            await Expect(warnings).ToHaveCountAsync(0);

            // Two flows longer than --max-messages-per-flow: the counts say what was kept, a line a flow what was not.
            var (first, second) = (Guid.NewGuid().ToString(), Guid.NewGuid().ToString());
            await ImportAsync(Json(Flow(first, 10), Flow(second, 6)));
            await Expect(result).ToHaveTextAsync("Imported 2 flows (8 messages) from json.");
            await Expect(warnings).ToHaveCountAsync(1);
            await Expect(warnings.Locator("strong")).ToHaveTextAsync("2 warnings");
            await Expect(warnings.Locator("li")).ToHaveTextAsync(
            [
                $"Flow {first} keeps the newest 4 of its 10 messages in the file: the oldest 6 were trimmed to stay within --max-messages-per-flow (4 messages), as in a capture (its trimmedMessages counts them).",
                $"Flow {second} keeps the newest 4 of its 6 messages in the file: the oldest 2 were trimmed to stay within --max-messages-per-flow (4 messages), as in a capture (its trimmedMessages counts them).",
            ]);
            await DashboardBrowser.ScreenshotAsync(page, "import-warnings");

            // The next import's report replaces them: a clean one has none.
            await ImportAsync(Json(Flow(Guid.NewGuid().ToString(), 2)));
            await Expect(result).ToHaveTextAsync("Imported 1 flows (2 messages) from json.");
            await Expect(warnings).ToHaveCountAsync(0);

            // A refused file has no report: the warnings of the import before it are gone too.
            await ImportAsync(Json(Flow(Guid.NewGuid().ToString(), 5)));
            await Expect(warnings.Locator("li")).ToHaveTextAsync(new Regex(" keeps the newest 4 of its 5 messages in the file"));
            await ImportAsync("not a flow file");
            await Expect(problem).ToBeVisibleAsync();
            await Expect(warnings).ToHaveCountAsync(0);
            await Expect(result).ToBeEmptyAsync();
        }
        finally
        {
            await browser.DisposeAsync();
        }
    }

    /// <summary>Reads an import's whole body, then holds the request until the test releases it.</summary>
    private sealed class HoldImports : IStartupFilter
    {
        public int Count;

        public TaskCompletionSource Received { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (HttpMethods.IsPost(context.Request.Method) && context.Request.Path == "/api/flows/import")
                {
                    Interlocked.Increment(ref Count);
                    var body = new MemoryStream();
                    await context.Request.Body.CopyToAsync(body);
                    body.Position = 0;
                    context.Request.Body = body;
                    Received.TrySetResult();
                    await Release.Task;
                }

                await nextMiddleware(context);
            });
            next(app);
        };
    }
}
