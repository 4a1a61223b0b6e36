using System.Globalization;

namespace WsWeb.Core.Formats;

/// <summary>
/// Bounds every import format applies to what the rest of WsWeb relies on: flow ids the REST routes can
/// address, message indices the dashboard can hold, close codes a close frame can carry. The readers call
/// these and report a failure with their own path (a JSON path, or a mitmproxy flow and byte).
/// </summary>
internal static class ImportChecks
{
    /// <summary>
    /// Largest message index an import may produce: JavaScript's <c>Number.MAX_SAFE_INTEGER</c> (2^53-1).
    /// The dashboard and scripts read indices as JSON numbers; past this they round, and cursors skip or repeat.
    /// </summary>
    public const long MaxIndex = (1L << 53) - 1;

    /// <summary>
    /// Largest timestamp (or duration) magnitude an import may carry, in seconds: 10^10 is the year 2286. Past it a
    /// date cannot be written (HAR, the dashboard), and one such flow would break every export that includes it.
    /// </summary>
    public const double MaxTimestamp = 1e10;

    /// <summary>Why <paramref name="value"/> cannot be a timestamp, or null if it can.</summary>
    public static string? TimestampProblem(double value) =>
        double.IsFinite(value) && Math.Abs(value) <= MaxTimestamp
            ? null
            : $"{value.ToString("R", CultureInfo.InvariantCulture)} is not a usable time (seconds since 1970, at most 1e10)";

    /// <summary>Longest flow id accepted; ours and mitmproxy's are 36-character GUIDs.</summary>
    public const int MaxIdLength = 128;

    // Literal routes beside /api/flows/{id}: GET /api/flows/export would never reach a flow named "export".
    // Routing compares literals ignoring case, so "Export" is taken too.
    private static readonly string[] ReservedIds = ["export", "import"];

    /// <summary>Why <paramref name="id"/> cannot be a flow id, or null if it can.</summary>
    /// <remarks>
    /// Ids travel as one URL path segment (<c>/api/flows/{id}/messages</c>, <c>/flows/{id}</c>), so they are limited
    /// to RFC 3986's unreserved characters: nothing a client must escape, nothing a proxy or router decodes
    /// differently. "." and ".." are unreserved but clients collapse them as dot-segments before sending.
    /// </remarks>
    public static string? IdProblem(string id)
    {
        if (id.Length == 0)
        {
            return "a flow id must not be empty";
        }

        if (id.Length > MaxIdLength)
        {
            return $"a flow id may be at most {MaxIdLength} characters; this one has {id.Length}";
        }

        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '.' or '_' or '~'))
            {
                return $"\"{Shorten(id)}\" is not a usable flow id: only A-Z, a-z, 0-9 and - . _ ~ can appear in the URL segment that names a flow";
            }
        }

        if (id is "." or "..")
        {
            return $"\"{id}\" is not a usable flow id: URLs collapse it as a dot-segment";
        }

        foreach (var reserved in ReservedIds)
        {
            if (id.Equals(reserved, StringComparison.OrdinalIgnoreCase))
            {
                return $"\"{id}\" is not a usable flow id: /api/flows/{reserved} is a route of its own";
            }
        }

        return null;
    }

    /// <summary>Why a trimmed count is unusable before any message is read, or null.</summary>
    public static string? TrimmedCountProblem(long trimmed) => trimmed is < 0 or > MaxIndex
        ? $"{trimmed.ToString(CultureInfo.InvariantCulture)} is not a trimmed count: it must be 0 to {MaxIndex.ToString(CultureInfo.InvariantCulture)} (2^53-1, the largest index a JavaScript number holds exactly)"
        : null;

    /// <summary>Why the messages after <paramref name="trimmed"/> trimmed ones run past <see cref="MaxIndex"/>, or null.</summary>
    /// <param name="total">Trimmed plus recorded messages: the index the next message would get.</param>
    public static string? LastIndexProblem(long trimmed, long total) => total > MaxIndex
        ? $"{trimmed.ToString(CultureInfo.InvariantCulture)} trimmed plus {(total - trimmed).ToString(CultureInfo.InvariantCulture)} messages run past index {MaxIndex.ToString(CultureInfo.InvariantCulture)} (2^53-1, the largest index a JavaScript number holds exactly)"
        : null;

    /// <summary>Why <paramref name="code"/> cannot be a recorded close code, or null: a close frame carries two bytes.</summary>
    public static string? CloseCodeProblem(long code) => code is < 0 or > ushort.MaxValue
        ? $"{code.ToString(CultureInfo.InvariantCulture)} is not a close code: a close frame carries 0 to 65535"
        : null;

    /// <summary>
    /// Why <paramref name="isReplay"/> cannot be a flow's <c>is_replay</c>, or null. mitmproxy sets only these two
    /// (or none), and <c>~replayq</c>/<c>~replays</c> tell them apart; any other text would be a replay of neither side.
    /// </summary>
    public static string? ReplayProblem(string isReplay) => isReplay is "request" or "response"
        ? null
        : $"\"{Shorten(isReplay)}\" is neither \"request\" (a replayed request) nor \"response\" (a replayed response); null means no replay";

    private static string Shorten(string id) => id.Length <= 40 ? id : id[..40] + "…";
}
