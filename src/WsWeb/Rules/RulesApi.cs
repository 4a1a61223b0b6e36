using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Api;
using WsWeb.Core.Filters;

namespace WsWeb.Rules;

/// <summary>Rules for unattended automation: drop, replace, delay or hold the messages a filter selects.</summary>
internal static class RulesApi
{
    internal const int MaxDelayMs = 60_000;

    // A rule's text is held for the life of the process and sent whole by every GET /api/rules and rules page:
    // without bounds, MaxRules rules of Kestrel's 30 MB bodies would be 30 GB. A label is a line of text.
    internal const int MaxNameLength = 256;

    // The replace regex runs on every message the filter selects, like the filter itself: the same bound.
    internal const int MaxPatternLength = 4096;

    // Room for a JSON document as the replacement; whole payloads are what inject is for.
    internal const int MaxReplacementLength = 16_384;

    // Rules run on the relay thread: a runaway regex gets cut off rather than stalling the connection.
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(250);

    public static IEndpointRouteBuilder MapRulesApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/rules").WithTags("Rules");
        group.MapGet("/", (RuleStore rules) => TypedResults.Ok(rules.Rules.Select(r => r.ToView()).ToList()))
            .WithName("ListRules")
            .WithSummary("All rules in the order they run, with hit counters.")
            .WithDescription("Example: `GET /api/rules` → `[{\"id\": \"…\", \"name\": \"no pings\", \"filter\": \"~wq & ~b ping\", \"action\": \"drop\", \"enabled\": true, \"hits\": 12}]`.");
        group.MapGet("/{id}", Get)
            .WithName("GetRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("One rule.")
            .WithDescription("Example: `GET /api/rules/{id}`.");
        group.MapPost("/", Create)
            .WithName("CreateRule")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Add a rule; it applies to every message from now on, after the rules already there.")
            .WithDescription($"At most {RuleStore.MaxRules} rules: past that a create is a `409` whose `errors` names `rules` and whose `limit` says how many. Lengths: `name` {MaxNameLength} characters, `filter` {FilterParser.MaxLength}, `replace.pattern` {MaxPatternLength}, `replace.replacement` {MaxReplacementLength} (longer is a `400` naming the field); `delayMs` 1–{MaxDelayMs}. " + "Actions: `drop`; `replace` with `{pattern, replacement}` (regex on text messages, or hex bytes on binary messages with `binary: true`); `delay` with `delayMs`; `hold` (held like intercept, released via /api/intercept/held). Example body: `{\"name\": \"rename user\", \"filter\": \"~wq & ~text\", \"action\": \"replace\", \"replace\": {\"pattern\": \"alice\", \"replacement\": \"bob\"}}`.")
            .WithMetadata(new RequestExample("""{"name": "rename user", "filter": "~wq & ~text", "action": "replace", "replace": {"pattern": "alice", "replacement": "bob"}}"""));
        group.MapPut("/{id}", Update)
            .WithName("UpdateRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Replace a rule's definition, keeping its id, position and hit counter.")
            .WithDescription("Same body as create. Example body: `{\"filter\": \"~ws & ~b ping\", \"action\": \"delay\", \"delayMs\": 500, \"enabled\": false}`.")
            .WithMetadata(new RequestExample("""{"name": "slow pongs", "filter": "~ws & ~b pong", "action": "delay", "delayMs": 500, "enabled": true}"""));
        group.MapDelete("/{id}", Delete)
            .WithName("DeleteRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Remove a rule.")
            .WithDescription("Example: `DELETE /api/rules/{id}`.");
        return app;
    }

    private static Results<Ok<RuleView>, ProblemHttpResult> Get(RuleStore rules, string id) =>
        rules.Get(id) is { } rule ? TypedResults.Ok(rule.ToView()) : ApiProblems.NotFound($"No rule with id '{id}'.");

    private static Results<Created<RuleView>, ValidationProblem, ProblemHttpResult> Create(RuleStore rules, RuleRequest request)
    {
        var id = Guid.NewGuid().ToString("N")[..12];
        if (!TryCompile(id, request, out var rule, out var problem))
        {
            return problem;
        }

        // Checked by the store as it adds: a check here first would let concurrent creates past the limit.
        return rules.TryAdd(rule) ? TypedResults.Created($"/api/rules/{id}", rule.ToView()) : TooManyRules();
    }

    /// <summary>
    /// A 409, not a 400: the body is fine, the collection is full. Shaped like the validation problems (errors names
    /// what is at fault, here the rules collection) so scripts and the dashboard read it the same way.
    /// </summary>
    private static ProblemHttpResult TooManyRules() => TypedResults.Problem(
        statusCode: StatusCodes.Status409Conflict,
        title: "Too many rules",
        extensions: new Dictionary<string, object?>
        {
            ["limit"] = RuleStore.MaxRules,
            ["errors"] = new Dictionary<string, string[]>
            {
                ["rules"] = [$"WsWeb keeps at most {RuleStore.MaxRules} rules, and every one runs on every message; delete one (DELETE /api/rules/{{id}}) before adding another."],
            },
        });

    private static Results<Ok<RuleView>, ValidationProblem, ProblemHttpResult> Update(RuleStore rules, string id, RuleRequest request)
    {
        if (rules.Get(id) is null)
        {
            return ApiProblems.NotFound($"No rule with id '{id}'.");
        }

        if (!TryCompile(id, request, out var rule, out var problem))
        {
            return problem;
        }

        return rules.Update(rule) ? TypedResults.Ok(rule.ToView()) : ApiProblems.NotFound($"No rule with id '{id}'.");
    }

    private static Results<NoContent, ProblemHttpResult> Delete(RuleStore rules, string id) =>
        rules.Remove(id) ? TypedResults.NoContent() : ApiProblems.NotFound($"No rule with id '{id}'.");

    private static bool TryCompile(string id, RuleRequest request, out Rule rule, out ValidationProblem problem)
    {
        rule = null!;
        problem = null!;
        if (request.Name?.Length > MaxNameLength)
        {
            problem = ApiProblems.Invalid("name", TooLong("name", request.Name.Length, MaxNameLength));
            return false;
        }

        if (string.IsNullOrWhiteSpace(request.Filter))
        {
            problem = ApiProblems.Invalid("filter", "filter is required (use ~all for every message).");
            return false;
        }

        if (!FlowFilter.TryParse(request.Filter, out var filter, out var error))
        {
            problem = ApiProblems.Invalid("filter", error.Message);
            return false;
        }

        RuleAction? action = request.Action?.ToLowerInvariant() switch
        {
            "drop" => RuleAction.Drop,
            "replace" => RuleAction.Replace,
            "delay" => RuleAction.Delay,
            "hold" => RuleAction.Hold,
            _ => null,
        };
        if (action is null)
        {
            problem = ApiProblems.Invalid("action", $"action must be 'drop', 'replace', 'delay' or 'hold', not '{request.Action}'.");
            return false;
        }

        Regex? pattern = null;
        byte[]? bytePattern = null, byteReplacement = null;
        if (action == RuleAction.Replace)
        {
            if (request.Replace is not { } replace)
            {
                problem = ApiProblems.Invalid("replace", "replace {pattern, replacement} is required for the replace action.");
                return false;
            }

            if (string.IsNullOrEmpty(replace.Pattern))
            {
                problem = ApiProblems.Invalid("replace.pattern", "pattern is required and must not be empty.");
                return false;
            }

            if (replace.Pattern.Length > MaxPatternLength)
            {
                problem = ApiProblems.Invalid("replace.pattern", TooLong("pattern", replace.Pattern.Length, MaxPatternLength));
                return false;
            }

            if (replace.Replacement is null)
            {
                problem = ApiProblems.Invalid("replace.replacement", "replacement is required (it may be empty).");
                return false;
            }

            if (replace.Replacement.Length > MaxReplacementLength)
            {
                problem = ApiProblems.Invalid("replace.replacement", TooLong("replacement", replace.Replacement.Length, MaxReplacementLength));
                return false;
            }

            if (replace.Binary == true)
            {
                if (!TryHex(replace.Pattern, out bytePattern) || bytePattern.Length == 0)
                {
                    problem = ApiProblems.Invalid("replace.pattern", "a binary pattern is hex bytes such as \"de ad be ef\".");
                    return false;
                }

                if (!TryHex(replace.Replacement, out byteReplacement))
                {
                    problem = ApiProblems.Invalid("replace.replacement", "a binary replacement is hex bytes such as \"00 01\" (or empty).");
                    return false;
                }
            }
            else
            {
                try
                {
                    pattern = new Regex(replace.Pattern, RegexOptions.CultureInvariant, RegexTimeout);
                }
                catch (ArgumentException ex)
                {
                    problem = ApiProblems.Invalid("replace.pattern", $"invalid regex: {ex.Message}");
                    return false;
                }
            }
        }

        if (action == RuleAction.Delay && request.DelayMs is not (>= 1 and <= MaxDelayMs))
        {
            problem = ApiProblems.Invalid("delayMs", $"delayMs is required for the delay action, 1-{MaxDelayMs}.");
            return false;
        }

        rule = new Rule
        {
            Id = id,
            Name = string.IsNullOrWhiteSpace(request.Name) ? $"{action.Value.ToString().ToLowerInvariant()} {filter.Expression}" : request.Name,
            Filter = filter,
            Action = action.Value,
            Replace = action == RuleAction.Replace ? request.Replace : null,
            Pattern = pattern,
            BytePattern = bytePattern,
            ByteReplacement = byteReplacement,
            DelayMs = action == RuleAction.Delay ? request.DelayMs : null,
            Enabled = request.Enabled ?? true,
        };
        return true;
    }

    private static string TooLong(string field, int length, int limit) =>
        string.Create(CultureInfo.InvariantCulture, $"{field} is {length} characters, at most {limit} characters.");

    private static bool TryHex(string text, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromHexString(text.Replace(" ", "", StringComparison.Ordinal));
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}
