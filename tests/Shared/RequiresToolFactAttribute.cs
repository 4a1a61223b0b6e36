using System.Diagnostics;

namespace WsWeb.Tests.Shared;

/// <summary>
/// A <see cref="FactAttribute"/> for tests that run an external program (mitmdump, python3 with websockets).
/// xunit 2 has no dynamic skip, so the check runs when the attribute is constructed: the test is skipped
/// with the reason when a tool is missing, unless <c>WSWEB_REQUIRE_ALL=1</c>, in which case it runs and fails.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresToolFactAttribute : FactAttribute
{
    public RequiresToolFactAttribute(params string[] tools)
    {
        Tools = tools;
        if (ExternalTools.RequireAll)
        {
            return;
        }

        var missing = tools.Where(t => !ExternalTools.IsAvailable(t)).ToList();
        if (missing.Count > 0)
        {
            Skip = $"Requires {string.Join(", ", missing)} (not found; set WSWEB_REQUIRE_ALL=1 to make this a failure).";
        }
    }

    public IReadOnlyList<string> Tools { get; }
}

/// <summary>The external programs interop tests use, found once per test run.</summary>
public static class ExternalTools
{
    public const string Mitmdump = "mitmdump";

    /// <summary>Debian's /usr/bin/python3 with the mitmproxy package importable (for FlowReader scripts).</summary>
    public const string PythonMitmproxy = "python3-mitmproxy";

    /// <summary>/usr/bin/python3 with the <c>websockets</c> package.</summary>
    public const string PythonWebsockets = "python3-websockets";

    private static readonly Dictionary<string, Lazy<bool>> Checks = new(StringComparer.Ordinal)
    {
        [Mitmdump] = new(() => MitmdumpPath is not null),
        [PythonMitmproxy] = new(() => PythonCanImport("mitmproxy.io")),
        [PythonWebsockets] = new(() => PythonCanImport("websockets")),
    };

    public static bool RequireAll => Environment.GetEnvironmentVariable("WSWEB_REQUIRE_ALL") == "1";

    /// <summary>
    /// The system interpreter, not whatever python3 is first on PATH: Debian's mitmproxy and websockets
    /// packages are installed for it only.
    /// </summary>
    public static string PythonPath { get; } = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : FindOnPath("python3") ?? "python3";

    public static string? MitmdumpPath { get; } = File.Exists("/usr/bin/mitmdump") ? "/usr/bin/mitmdump" : FindOnPath("mitmdump");

    /// <summary>A directory (<paramref name="confdir"/>, or a new one) in which the real mitmdump made its CA (mitmproxy-ca.pem and the certificate files).</summary>
    public static async Task<string> MitmproxyConfdirAsync(string? confdir = null)
    {
        confdir ??= Path.Combine(Path.GetTempPath(), "wsweb-mitmconf-" + Guid.NewGuid().ToString("N"));
        var (exitCode, _, error) = await RunMitmdumpAsync(["-n", "--set", $"confdir={confdir}", "-r", "/dev/null"]);
        Assert.True(exitCode == 0, error);
        return confdir;
    }

    /// <summary>Runs mitmdump with <paramref name="arguments"/> to its end (at most 60 s): its exit code and what it printed.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunMitmdumpAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(MitmdumpPath ?? "mitmdump", arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    public static bool IsAvailable(string tool) => Checks.TryGetValue(tool, out var check) ? check.Value : FindOnPath(tool) is not null;

    private static bool PythonCanImport(string module)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(PythonPath, ["-c", $"import {module}"])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            });
            if (process is null)
            {
                return false;
            }

            if (!process.WaitForExit(30_000))
            {
                process.Kill();
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
}
