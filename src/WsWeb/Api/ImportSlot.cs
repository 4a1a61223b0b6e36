namespace WsWeb.Api;

/// <summary>
/// The one import that may read and parse at a time, and how long another waits for it before it is turned away.
/// Registered in the services only to change the wait (tests); otherwise each host makes its own.
/// </summary>
internal sealed class ImportSlot
{
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    public TimeSpan Wait { get; init; } = DefaultWait;

    /// <summary>How long the upload holding the slot may send nothing before it is cut (408) and the slot freed.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    public static readonly TimeSpan DefaultMaxUploadTime = TimeSpan.FromMinutes(15);

    /// <summary>How long the upload holding the slot may take in all (a trickle too) before it is cut (408) and the slot freed.</summary>
    public TimeSpan MaxUploadTime { get; init; } = DefaultMaxUploadTime;

    public SemaphoreSlim Gate { get; } = new(1, 1);
}
