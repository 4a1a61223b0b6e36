using System.Diagnostics;

namespace WsWeb.Tests.Shared;

/// <summary>
/// Files that belong to another user, for tests of what WsWeb does with them. Only root may give a file away, so
/// these tests need root on Linux (as CI's container runs); <see cref="RequiresRootOnLinuxFactAttribute"/> skips them elsewhere.
/// </summary>
public static class UnixUsers
{
    /// <summary>nobody (and nogroup) on Debian: a user that owns nothing of ours.</summary>
    public const int Nobody = 65534;

    public static bool CanChown => OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess;

    /// <summary>Makes <paramref name="path"/> belong to <paramref name="uid"/> (and the group of that number).</summary>
    public static void Chown(string path, int uid)
    {
        using var process = Process.Start(new ProcessStartInfo("chown", [$"{uid}:{uid}", path]) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"chown {uid} {path} failed: {error}");
    }

    /// <summary>A new directory only its owner may write, whatever the umask (Ubuntu's 002 would leave it group-writable, which WsWeb refuses).</summary>
    public static string CreatePrivateDirectory(string path) => OperatingSystem.IsWindows()
        ? Directory.CreateDirectory(path).FullName
        : Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute).FullName;
}

/// <summary>A test that gives files to another user: skipped with the reason unless it runs as root on Linux.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresRootOnLinuxFactAttribute : FactAttribute
{
    public RequiresRootOnLinuxFactAttribute()
    {
        if (!UnixUsers.CanChown)
        {
            Skip = "Needs root on Linux, to make a file belong to another user (chown).";
        }
    }
}
