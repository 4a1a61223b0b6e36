using System.Threading.Tasks.Sources;

namespace WsWeb.Bench;

/// <summary>
/// Credits for one sender and one receiver without allocating per wait (SemaphoreSlim.WaitAsync
/// allocates a Task whenever it has to wait, which is every message once the window is full).
/// </summary>
internal sealed class WindowGate(int credits) : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _available = credits;

    /// <summary>Takes a credit, waiting for one if none is left. Single waiter: await before calling again.</summary>
    public ValueTask WaitAsync()
    {
        _core.Reset();
        if (Interlocked.Decrement(ref _available) >= 0)
        {
            return default;
        }

        // In debt: the Release that brings the count back to zero completes this wait.
        return new ValueTask(this, _core.Version);
    }

    public void Release()
    {
        if (Interlocked.Increment(ref _available) == 0)
        {
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
