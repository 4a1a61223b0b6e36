namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>
/// A clock whose timers fire only when the test says so (<see cref="FireAll"/>): a wait on it (Task.Delay with this
/// provider) lasts until the test moves on, so a test can count what happens in between.
/// </summary>
internal sealed class ManualTimers : TimeProvider
{
    private readonly List<Timer> _timers = [];

    /// <summary>Timers created and neither fired nor disposed.</summary>
    public int Pending
    {
        get { lock (_timers) { return _timers.Count(t => !t.Done); } }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Timer(callback, state);
        lock (_timers)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    /// <summary>Fires every pending timer once.</summary>
    public void FireAll()
    {
        List<Timer> due;
        lock (_timers)
        {
            due = [.. _timers.Where(t => !t.Done)];
        }

        foreach (var timer in due)
        {
            timer.Fire();
        }
    }

    private sealed class Timer(TimerCallback callback, object? state) : ITimer
    {
        private int _done;

        public bool Done => Volatile.Read(ref _done) != 0;

        public void Fire()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                callback(state);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => !Done;

        public void Dispose() => Volatile.Write(ref _done, 1);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
