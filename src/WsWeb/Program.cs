using WsWeb.Hosting;

// Generic-host switches (--environment=, --contentRoot=, --applicationName=) go to the host untouched;
// everything else is WsWeb's own command line, where an unknown option is an error.
var (hostArgs, ownArgs) = CommandLine.SplitHostArguments(args);
var root = CommandLine.Create(async (options, _) =>
{
    WebApplication app;
    try
    {
        app = WsWebHost.Build(options, hostArgs);
    }
    catch (WsWeb.Proxy.Certificates.CertificateFileException ex)
    {
        await Console.Error.WriteLineAsync($"error: {ex.Message}");
        return 1;
    }

    await app.RunAsync();
    return 0;
});

return await root.Parse(ownArgs).InvokeAsync();
