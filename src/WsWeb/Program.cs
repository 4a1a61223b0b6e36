using WsWeb.Hosting;

var root = CommandLine.Create(async (options, remaining, cancellationToken) =>
{
    WebApplication app;
    try
    {
        app = WsWebHost.Build(options, remaining);
    }
    catch (WsWeb.Proxy.Certificates.CertificateFileException ex)
    {
        await Console.Error.WriteLineAsync($"error: {ex.Message}");
        return 1;
    }

    await app.RunAsync();
    return 0;
});

return await root.Parse(args).InvokeAsync();
