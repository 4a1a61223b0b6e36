using Microsoft.AspNetCore.Connections;
using WsWeb.Hosting;

// Generic-host switches (--environment=, --contentRoot=, --applicationName=) go to the host untouched;
// everything else is WsWeb's own command line, where an unknown option is an error.
var (hostArgs, ownArgs) = CommandLine.SplitHostArguments(args);
var root = CommandLine.Create(async (options, _) =>
{
    // The host logs a start that fails as "Hosting failed to start" with the whole stack, just before the error line
    // below says the same thing in one line and names the option. Its errors are held back until it has started;
    // a failure this does not explain is printed in full below, so nothing is lost.
    var starting = new StartupLog();
    WebApplication app;
    try
    {
        app = WsWebHost.Build(options, hostArgs, services => services.AddLogging(logging => logging.AddFilter(StartupLog.HostCategory, starting.Allows)));
    }
    catch (Exception ex) when (ex is WsWeb.Proxy.Certificates.CertificateFileException or WsWeb.Recording.FlowFileException)
    {
        await Console.Error.WriteLineAsync($"error: {ex.Message}");
        return 1;
    }

    await using (app)
    {
        try
        {
            await app.StartAsync();
        }
        catch (WsWeb.Recording.FlowFileException ex)
        {
            await Console.Error.WriteLineAsync($"error: {ex.Message}");
            return 1;
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException)
        {
            // Kestrel says "Failed to bind to address http://127.0.0.1:8080: address already in use."
            var option = ex.Message.Contains($":{options.ListenPort}:", StringComparison.Ordinal) ? "--listen-port" : "--web-port";
            await Console.Error.WriteLineAsync($"error: {option}: {ex.Message} Is another WsWeb (or another program) using it? Pick another port.");
            return 1;
        }
        catch (IOException ex) when (ex.InnerException is System.Net.Sockets.SocketException socket)
        {
            // An address that went away since the options were checked, a port below 1024 without the right, …
            await Console.Error.WriteLineAsync($"error: --listen-host/--web-host: {ex.Message} ({socket.SocketErrorCode})");
            return 1;
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync($"error: WsWeb failed to start: {ex}");
            return 1;
        }

        starting.Started();
        await app.WaitForShutdownAsync();
        return 0;
    }
});

return await root.Parse(ownArgs).InvokeAsync();
