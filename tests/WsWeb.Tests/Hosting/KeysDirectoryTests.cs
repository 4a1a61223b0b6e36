using System.Net;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hosting;

/// <summary>
/// A data directory whose keys/ cannot hold the dashboard's data-protection keys: the real executable starts, says so
/// in one warning naming --data-dir, and serves the dashboard with keys kept in memory, instead of logging the
/// framework's KeyRingProvider failure with its stack.
/// </summary>
public sealed class KeysDirectoryTests
{
    [Fact]
    public async Task KeysThatIsAFile_GivesOneWarning_AndTheDashboardServes()
    {
        var dataDirectory = NewDirectory();
        await File.WriteAllTextAsync(Path.Combine(dataDirectory, "keys"), "not a directory");
        try
        {
            await AssertStartsWithInMemoryKeysAsync(dataDirectory, wrapper: null);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task AKeysDirectoryItCannotWrite_GivesOneWarning_AndTheDashboardServes()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // The data directory is WsWeb's to write (its CA goes there), keys/ is not. Root may write anywhere, so as root
        // WsWeb runs as nobody (setpriv, util-linux), in a data directory given to nobody (one others may write is
        // refused) with root's keys/ in it; otherwise keys/ is made read-only for this user.
        var dataDirectory = NewDirectory();
        var keys = Directory.CreateDirectory(Path.Combine(dataDirectory, "keys")).FullName;
        string? wrapper = null;
        if (Environment.UserName == "root")
        {
            UnixUsers.Chown(dataDirectory, UnixUsers.Nobody);
            File.SetUnixFileMode(keys, (UnixFileMode)0b111_101_101);
            wrapper = $"HOME='{dataDirectory}' exec setpriv --reuid={UnixUsers.Nobody} --regid={UnixUsers.Nobody} --clear-groups \"$@\"";
        }
        else
        {
            File.SetUnixFileMode(keys, (UnixFileMode)0b101_101_101);
        }

        try
        {
            var wsweb = await AssertStartsWithInMemoryKeysAsync(dataDirectory, wrapper);
            Assert.Contains(wsweb, line => line.Contains("Permission denied", StringComparison.Ordinal) || line.Contains("denied", StringComparison.OrdinalIgnoreCase));
        }
        finally
        {
            File.SetUnixFileMode(keys, (UnixFileMode)0b111_000_000);
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    private static async Task<IReadOnlyList<string>> AssertStartsWithInMemoryKeysAsync(string dataDirectory, string? wrapper)
    {
        var wsweb = await WsWebProcess.StartAsync(["--listen-port", "0", "--web-port", "0", "--data-dir", dataDirectory], wrapper);
        await using (wsweb)
        {
            await wsweb.WaitForLineAsync(line => line.Contains("Application started", StringComparison.Ordinal), "that it started");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            using var page = await http.GetAsync(new Uri($"http://127.0.0.1:{wsweb.WebPort}/"));
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);

            var lines = wsweb.Lines;
            var warning = Assert.Single(lines, line => line.Contains("data-protection keys cannot be kept", StringComparison.Ordinal));
            Assert.Contains(Path.Combine(dataDirectory, "keys"), warning, StringComparison.Ordinal);
            Assert.Contains("--data-dir", warning, StringComparison.Ordinal);
            Assert.DoesNotContain(lines, line => line.StartsWith("fail:", StringComparison.Ordinal) || line.Contains("   at ", StringComparison.Ordinal));
            Assert.DoesNotContain(lines, line => line.Contains("KeyRingProvider", StringComparison.Ordinal));
            return lines;
        }
    }

    private static string NewDirectory() =>
        UnixUsers.CreatePrivateDirectory(Path.Combine(Path.GetTempPath(), "wsweb-keys-" + Guid.NewGuid().ToString("N")));
}
