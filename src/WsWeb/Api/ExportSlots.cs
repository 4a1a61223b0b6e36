namespace WsWeb.Api;

/// <summary>
/// The exports that may be written at a time, and how long another waits before it is turned away (429): each holds a
/// thread and, while it is written, a temporary file as large as the export. Registered in the services only to change
/// them (tests); otherwise each host makes its own.
/// </summary>
internal sealed class ExportSlots
{
    public const int DefaultCount = 2;

    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    public static readonly string Help = $"At most {DefaultCount} exports are written and downloaded at a time: another waits up to {DefaultWait.TotalSeconds:0} s for one to finish, then is a `429` with `Retry-After`. A download that takes nothing for {DefaultIdleTimeout.TotalSeconds:0} s is cut.";

    public ExportSlots(int count = DefaultCount)
    {
        Count = count;
        Gate = new SemaphoreSlim(count, count);
    }

    public int Count { get; }

    public TimeSpan Wait { get; init; } = DefaultWait;

    /// <summary>How long a download may take nothing before it is cut and its slot and file freed.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    public SemaphoreSlim Gate { get; }
}
