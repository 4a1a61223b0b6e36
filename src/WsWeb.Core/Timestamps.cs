namespace WsWeb.Core;

/// <summary>Flows use mitmproxy's time unit: Unix seconds as a double.</summary>
public static class Timestamps
{
    public static double Now(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return FromDateTimeOffset(timeProvider.GetUtcNow());
    }

    public static double FromDateTimeOffset(DateTimeOffset value) => value.ToUnixTimeMilliseconds() / 1000.0 + (value.Ticks % TimeSpan.TicksPerMillisecond) / (double)TimeSpan.TicksPerSecond;

    public static DateTimeOffset ToDateTimeOffset(double seconds) =>
        DateTimeOffset.UnixEpoch.AddTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond));
}
