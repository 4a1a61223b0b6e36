namespace WsWeb.Tests.Infrastructure;

/// <summary>
/// The system clock, except that a wait of a second or more never ends: a test that runs a host on it shows that
/// something finishes without falling back on such a wait (the relay's 5 s close timeout, the shutdown's 5 s reply
/// wait), while short polls (20 ms, 500 ms) run as usual.
/// </summary>
internal sealed class ShortWaitsOnlyTimeProvider : TimeProvider
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(1);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        dueTime >= Long || dueTime == Timeout.InfiniteTimeSpan
            ? new NeverFires()
            : System.CreateTimer(callback, state, dueTime, period);

    private sealed class NeverFires : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
