using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace WsWeb.Tests.Hosting;

/// <summary>The real executable refusing to start: one line naming the option, a non-zero exit, no stack trace.</summary>
public sealed class EntryPointErrorTests
{
    [Fact]
    public async Task APortInUseIsNamed()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-port-" + Guid.NewGuid().ToString("N"));

        var (exitCode, error, output) = await RunAsync("--listen-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--web-port", "0", "--data-dir", dataDirectory);

        Assert.Equal(1, exitCode);
        Assert.StartsWith("error: --listen-port:", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);

        // The one line says it all: not also the host's "Hosting failed to start" with its stack, on the console log.
        Assert.DoesNotContain("Hosting failed to start", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", output, StringComparison.Ordinal);
        Directory.Delete(dataDirectory, recursive: true);
    }

    [Fact]
    public async Task ADataDirectoryThatCannotExistIsNamed()
    {
        var file = Path.GetTempFileName();
        try
        {
            var (exitCode, error, _) = await RunAsync("--listen-port", "0", "--web-port", "0", "--data-dir", Path.Combine(file, "sub"));

            Assert.Equal(1, exitCode);
            Assert.StartsWith("error: --data-dir:", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task<(int ExitCode, string Error, string Output)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, (await error).Trim(), await output);
    }
}
