using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;
using WsWeb.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace WsWeb.Tests.Dashboard;

/// <summary>The import form while the server is still reading a capture it has received.</summary>
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
