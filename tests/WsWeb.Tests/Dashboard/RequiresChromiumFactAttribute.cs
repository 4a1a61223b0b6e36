namespace WsWeb.Tests.Dashboard;

/// <summary>
/// A browser test: skipped with a reason when Debian's Chromium (/usr/bin/chromium) is missing, unless
/// WSWEB_REQUIRE_ALL=1 (CI), where it runs and fails loudly instead. xunit 2 decides skips at discovery.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RequiresChromiumFactAttribute : FactAttribute
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public RequiresChromiumFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("WSWEB_REQUIRE_ALL") != "1" && !File.Exists(ChromiumPath))
        {
            Skip = $"Chromium is not installed at {ChromiumPath} (apt-get install chromium); set WSWEB_REQUIRE_ALL=1 to fail instead of skipping.";
        }
    }
}
