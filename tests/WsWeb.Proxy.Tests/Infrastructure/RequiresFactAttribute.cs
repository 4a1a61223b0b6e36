using System.Diagnostics;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>
/// Facts that need something outside .NET. xunit 2.9 cannot skip at run time, so the attribute
/// decides when the tests are discovered. With WSWEB_REQUIRE_ALL=1 (CI) nothing is skipped: a
/// missing dependency then fails the test loudly instead of hiding it.
/// </summary>
internal static class ExternalRequirements
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<bool> PythonWebSocketsLazy = new(() => Succeeds(Python, "-c \"import websockets\""));

    public static bool RequireAll => Environment.GetEnvironmentVariable("WSWEB_REQUIRE_ALL") == "1";

    public static bool PythonWebSockets => PythonWebSocketsLazy.Value;

    private static bool Succeeds(string fileName, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(fileName, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }

            if (!process.WaitForExit(15_000))
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
}

/// <summary>A fact that is skipped when Debian's python3-websockets is missing (unless WSWEB_REQUIRE_ALL=1).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresPythonWebSocketsFactAttribute : FactAttribute
{
    public RequiresPythonWebSocketsFactAttribute()
    {
        if (!ExternalRequirements.RequireAll && !ExternalRequirements.PythonWebSockets)
        {
            Skip = "python3-websockets is not installed (apt-get install python3-websockets)";
        }
    }
}
