namespace WsWeb.Tests.Shared;

/// <summary>Waits for state that relay and hub threads set asynchronously, failing with what was awaited.</summary>
public static class Eventually
{
    public static async Task AssertAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for: {what}");
            }

            await Task.Delay(10);
        }
    }
}
