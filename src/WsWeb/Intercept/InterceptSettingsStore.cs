using WsWeb.Api;

namespace WsWeb.Intercept;

/// <summary>
/// The intercept settings as users change them: <see cref="InterceptService.Settings"/> plus a version, so a form left
/// open on another page (or a script) cannot silently undo a teammate's filter with If-Match, and the hub can tell every
/// intercept page what changed. Every change of the settings goes through here, never through
/// <see cref="InterceptService.Set"/> directly, or the version would not move.
/// </summary>
/// <remarks>
/// The settings are not saved, but an ETag a page or script read before a restart must not match after it: versions
/// start at the start time in milliseconds, not at 1, so a teammate's change after the restart is never taken for
/// the one the stale page read.
/// </remarks>
internal sealed class InterceptSettingsStore(InterceptService intercept, TimeProvider time)
{
    private readonly object _gate = new();
    private long _version = time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The settings changed (set or cleared); raised after the change, outside the lock.</summary>
    public event Action? Changed;

    /// <summary>The settings in force and their version, read together.</summary>
    public (InterceptSettings? Settings, long Version) Current
    {
        get
        {
            lock (_gate)
            {
                return (intercept.Settings, _version);
            }
        }
    }

    /// <summary>
    /// Sets (or, with null, clears) the settings at the next version if the version still matches
    /// <paramref name="ifMatch"/> (null: whatever it is); false, and nothing changed, otherwise. Check and write share
    /// one lock, so of two writes made with the same If-Match exactly one succeeds.
    /// </summary>
    public bool TrySet(InterceptSettings? settings, IfMatch? ifMatch, out long version)
    {
        lock (_gate)
        {
            if (ifMatch is not null && !ifMatch.Matches(_version))
            {
                version = _version;
                return false;
            }

            intercept.Set(settings);
            version = ++_version;
        }

        Changed?.Invoke();
        return true;
    }
}
