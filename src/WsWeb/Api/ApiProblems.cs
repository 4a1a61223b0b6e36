using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Core.Filters;

namespace WsWeb.Api;

/// <summary>
/// RFC 7807 answers shared by the API groups. Validation failures always name the field at fault so a
/// script can point at the exact input it sent wrong.
/// </summary>
internal static class ApiProblems
{
    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>
    /// A filter regex ran past its match timeout during a query: a 400, because the expression is what must change,
    /// and the message says which regex and where.
    /// </summary>
    public static ValidationProblem FilterTooSlow(FilterTimeoutException exception) => Invalid("filter", exception.Message);

    /// <summary>
    /// Reads the optional <c>filter</c> query of an endpoint: none (absent or blank) is <c>null</c>, and one that does not
    /// parse is the 400 naming <c>filter</c> with where it is wrong.
    /// </summary>
    public static bool TryParseFilter(string? filter, out FlowFilter? parsed, [NotNullWhen(false)] out ValidationProblem? problem)
    {
        (parsed, problem) = (null, null);
        if (string.IsNullOrWhiteSpace(filter) || FlowFilter.TryParse(filter, out parsed, out var error))
        {
            return true;
        }

        problem = Invalid("filter", error.Message);
        return false;
    }

    /// <summary>
    /// A 413 shaped like a validation problem (errors names the field), as the exception handler answers a body past
    /// Kestrel's limit on inject: both are "this input is too large", whichever code finds it.
    /// </summary>
    public static ProblemHttpResult TooLarge(string field, string message) =>
        ForField(StatusCodes.Status413PayloadTooLarge, "One or more validation errors occurred.", field, message);

    /// <summary>
    /// A 400 naming <c>body</c> when a request to an endpoint that reads none has one: a bulk action (clear, release all,
    /// drop all) given its filter in a body would otherwise act on everything. Null when there is no body.
    /// </summary>
    public static ValidationProblem? UnreadBody(HttpRequest request) =>
        request.ContentLength > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0)
            ? Invalid("body", $"{request.Method} {request.Path} takes no body: give its filter in the query (?filter=…). Nothing was done.")
            : null;

    /// <summary>The <c>errors</c> member of a problem about an input: the field at fault and why.</summary>
    public static Dictionary<string, string[]> Errors(string field, string message) => new() { [field] = [message] };

    /// <summary>
    /// A problem about one input that is not a 400 (a 401, 408, 409, 412, 413): shaped like the validation problems, its
    /// <c>errors</c> naming the field, so scripts and the dashboard read every problem about an input the same way.
    /// </summary>
    public static ProblemHttpResult ForField(int status, string title, string field, string message, string? detail = null, IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var members = new Dictionary<string, object?>(extensions ?? new Dictionary<string, object?>()) { ["errors"] = Errors(field, message) };
        return TypedResults.Problem(detail, statusCode: status, title: title, extensions: members);
    }

    public static ProblemHttpResult NotFound(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status409Conflict, title: "Conflict");

    public static ProblemHttpResult FlowNotFound(string id) => NotFound($"No flow with id '{id}'.");

    /// <summary>A 409 for asking a plain HTTP flow for what only a WebSocket has: messages, their content, their activity.</summary>
    public static ProblemHttpResult NotWebSocket(string id) => Conflict($"Flow {id} is not a WebSocket flow; it has no messages.");

    /// <summary>A 429: what is asked for is bounded, and the bound is reached (replays, queued injections, exports, imports).</summary>
    public static ProblemHttpResult TooMany(string title, string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status429TooManyRequests, title: title);

    /// <summary>
    /// A 429 for one that waited <paramref name="waited"/> for its turn and did not get it, with a Retry-After of as many
    /// whole seconds (at least 1), which <paramref name="detail"/> is given to say.
    /// </summary>
    public static ProblemHttpResult TryLater(HttpResponse response, TimeSpan waited, string title, Func<int, string> detail)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(waited.TotalSeconds));
        response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TooMany(title, detail(seconds));
    }
}
