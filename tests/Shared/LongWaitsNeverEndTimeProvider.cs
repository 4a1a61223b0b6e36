namespace WsWeb.Tests.Shared;

/// <summary>
/// The system clock, except that a wait of <paramref name="longWait"/> or more never ends: a test that runs a host on it
/// shows that something finishes without falling back on such a wait (the relay's 5 s close timeout, the shutdown's
/// 5 s reply wait), while shorter waits and polls run as usual.
/// </summary>
internal sealed class LongWaitsNeverEndTimeProvider(TimeSpan longWait) : TimeProvider
{
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        dueTime >= longWait || dueTime == Timeout.InfiniteTimeSpan
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
