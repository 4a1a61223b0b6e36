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

    [Fact]
    public async Task ADataDirectoryOthersCanWriteIsRefusedAndLeftEmpty()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        // mkdir -m 777: any local user could plant a CA key there before WsWeb makes one, or swap it after.
        var dataDirectory = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "wsweb-open-" + Guid.NewGuid().ToString("N"))).FullName;
        File.SetUnixFileMode(dataDirectory, (UnixFileMode)0b111_111_111);
        try
        {
            var (exitCode, error, output) = await RunAsync("--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory);

            Assert.Equal(1, exitCode);
            Assert.Equal(
                $"error: --data-dir: {dataDirectory} can be written by other users (mode 777), so any of them could put a CA key of their own in it. Run chmod 700 {dataDirectory}, or choose another --data-dir.",
                error);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);

            // Refused before anything went in (the dashboard's keys/ included), and its mode is the user's to fix.
            Assert.Empty(Directory.EnumerateFileSystemEntries(dataDirectory));
            Assert.Equal((UnixFileMode)0b111_111_111, File.GetUnixFileMode(dataDirectory));
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task ACaKeyOthersCanWriteIsRefused()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-key-" + Guid.NewGuid().ToString("N"));
        using (WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(dataDirectory, TimeProvider.System))
        {
        }

        var key = Path.Combine(dataDirectory, "wsweb-ca.pem");
        File.SetUnixFileMode(key, (UnixFileMode)0b110_110_000);
        try
        {
            var (exitCode, error, output) = await RunAsync("--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory);

            Assert.Equal(1, exitCode);
            Assert.Equal($"error: {key} holds the CA private key but can be written by other users (mode 660), so any of them could replace the CA. Run chmod 600 {key}.", error);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [RequiresRootOnLinuxFact]
    public async Task ACaKeyOfAnotherUserIsRefused()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "wsweb-key-" + Guid.NewGuid().ToString("N"));
        using (WsWeb.Proxy.Certificates.CertificateAuthority.LoadOrCreate(dataDirectory, TimeProvider.System))
        {
        }

        var key = Path.Combine(dataDirectory, "wsweb-ca.pem");
        UnixUsers.Chown(key, UnixUsers.Nobody);
        try
        {
            var (exitCode, error, _) = await RunAsync("--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory);

            Assert.Equal(1, exitCode);
            Assert.Equal(
                $"error: {key} holds the CA private key but belongs to uid {UnixUsers.Nobody}, not to uid 0 that WsWeb runs as, so that user could replace the CA. Make it yours (as root: chown 0 {key}), or delete the wsweb-ca* files to generate a new CA (clients must then trust it again).",
                error);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
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
