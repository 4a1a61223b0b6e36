using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace WsWeb.Api;

/// <summary>
/// Optimistic concurrency for shared settings (rules, the intercept filter): answers carry the version as a strong
/// ETag, <c>"3"</c>, and a write with <c>If-Match</c> happens only if the version is still one it names. Without the
/// header a write goes through as before (last write wins), so existing scripts keep working; the dashboard always
/// sends it, so a page that was left open cannot undo a teammate's change.
/// </summary>
internal sealed class IfMatch
{
    private readonly IList<EntityTagHeaderValue>? _tags;

    private IfMatch(string header, IList<EntityTagHeaderValue>? tags)
    {
        Header = header;
        _tags = tags;
    }

    /// <summary>The header as sent, for the 412's message.</summary>
    public string Header { get; }

    /// <summary>The OpenAPI description of If-Match on a write of <paramref name="what"/> ("the rule", "the settings").</summary>
    public static string Help(string what) =>
        $"With `If-Match: \"{{version}}\"` (the `ETag` of a read) the change is made only if the version of {what} is still that one; " +
        $"otherwise nothing changes and the answer is a `412` problem whose `errors` names `If-Match` and whose `currentVersion` and `current` give {what} in its current state. " +
        "Without `If-Match` the change is made whatever happened meanwhile (last write wins), as before versions existed. A malformed `If-Match` is a `400` naming it.";

    public static string ETag(long version) => string.Create(CultureInfo.InvariantCulture, $"\"{version}\"");

    /// <summary>
    /// Reads If-Match: null when absent (no precondition). A header that is not <c>*</c> alone or a list of quoted entity tags
    /// is a 400 naming If-Match: ignoring it would write unconditionally, which is what the sender asked us not to do.
    /// </summary>
    public static bool TryRead(HttpRequest request, out IfMatch? ifMatch, out ValidationProblem problem)
    {
        ifMatch = null;
        problem = null!;
        var values = request.Headers.IfMatch;
        if (values.Count == 0)
        {
            return true;
        }

        var header = values.ToString();
        if (header.Trim() == "*")
        {
            ifMatch = new IfMatch(header, null);
            return true;
        }

        // RFC 9110 13.1.1: If-Match is "*" or a list of entity tags, never both. The parser takes a "*" in a list for a
        // tag, which would match no version: "*, *" or "\"1\", *" would be a 412 for a header that is malformed.
        if (!EntityTagHeaderValue.TryParseStrictList(values, out var tags) || tags.Count == 0 || tags.Any(tag => tag.Tag.Equals("*", StringComparison.Ordinal)))
        {
            problem = ApiProblems.Invalid(HeaderNames.IfMatch, $"If-Match must be * alone or entity tags in quotes, such as \"3\" as the ETag header gives them; got {header}.");
            return false;
        }

        ifMatch = new IfMatch(header, tags);
        return true;
    }

    /// <summary>
    /// RFC 9110's strong comparison: a weak tag (W/"3") never matches, as a weak validator cannot promise the write is
    /// made against the version the client saw. <c>*</c> matches whatever exists.
    /// </summary>
    public bool Matches(long version)
    {
        if (_tags is null)
        {
            return true;
        }

        var etag = ETag(version);
        return _tags.Any(tag => !tag.IsWeak && tag.Tag.Equals(etag, StringComparison.Ordinal));
    }

    /// <summary>
    /// 412 naming If-Match and the version in force, with <paramref name="current"/> (what is there now), so a client
    /// can show it or retry against it without another read. <paramref name="plural"/>: <paramref name="what"/> takes
    /// "were" (the intercept settings).
    /// </summary>
    public ProblemHttpResult Failed(HttpResponse response, string what, long currentVersion, object current, bool plural = false)
    {
        response.Headers.ETag = ETag(currentVersion);
        return ApiProblems.ForField(
            StatusCodes.Status412PreconditionFailed,
            "Precondition Failed",
            HeaderNames.IfMatch,
            string.Create(CultureInfo.InvariantCulture, $"{Header} does not match the current version {ETag(currentVersion)}."),
            detail: $"{what} {(plural ? "were" : "was")} changed by someone else since you read it: it is at version {currentVersion} (ETag {ETag(currentVersion)}), and If-Match asked for {Header}. Nothing was changed. Read it again and make your change to what it is now, or leave out If-Match to overwrite it.",
            extensions: new Dictionary<string, object?> { ["currentVersion"] = currentVersion, ["current"] = current });
    }
}
