using System.Net;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>
/// The data directory WsWeb makes for itself passes its own check: the real executable, without --data-dir, makes
/// ~/.wsweb owner-only and starts. Refusals of directories and keys others may write are in <see cref="EntryPointErrorTests"/>.
/// </summary>
public sealed class DataDirectoryTests
{
    [Fact]
    public async Task WithoutDataDir_HomeWswebIsMadeOwnerOnly_AndWsWebStarts()
    {
        var home = UnixUsers.CreatePrivateDirectory(Path.Combine(Path.GetTempPath(), "wsweb-home-" + Guid.NewGuid().ToString("N")));
        try
        {
            // ProgramTests sets WSWEB_DATA_DIR in this process for a while, and children inherit it.
            var wsweb = await WsWebProcess.StartAsync(["--listen-port", "0", "--web-port", "0"], $"unset WSWEB_DATA_DIR; HOME='{home}' exec \"$@\"");
            await using (wsweb)
            {
                await wsweb.WaitForLineAsync(line => line.Contains("Application started", StringComparison.Ordinal), "that it started");
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
                using var health = await http.GetAsync(new Uri($"http://127.0.0.1:{wsweb.WebPort}/healthz"));
                Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            }

            var dataDirectory = Path.Combine(home, ".wsweb");
            Assert.True(File.Exists(Path.Combine(dataDirectory, "wsweb-ca.pem")));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dataDirectory));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dataDirectory, "wsweb-ca.pem")));
            }
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
