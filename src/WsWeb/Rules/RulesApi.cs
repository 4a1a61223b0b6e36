using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Api;
using WsWeb.Core.Filters;

namespace WsWeb.Rules;

/// <summary>Rules for unattended automation: drop, replace, delay or hold the messages a filter selects.</summary>
internal static class RulesApi
{
    public static IEndpointRouteBuilder MapRulesApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/rules").WithTags("Rules").RejectRepeatedQuery();
        group.MapGet("/", (RuleStore rules) => TypedResults.Ok(rules.Rules.Select(r => r.ToView()).ToList()))
            .WithName("ListRules")
            .WithSummary("All rules in the order they run, with hit counters and versions.")
            .WithDescription("Each rule's `version` is what `If-Match` compares (`If-Match: \"3\"` for version 3). Example: `GET /api/rules` → `[{\"id\": \"…\", \"name\": \"no pings\", \"filter\": \"~wq & ~b ping\", \"action\": \"drop\", \"enabled\": true, \"hits\": 12, \"version\": 3}]`.");
        group.MapGet("/{id}", Get)
            .WithName("GetRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("One rule, with its version as the ETag.")
            .WithDescription("The `ETag` header is the rule's `version` in quotes (`\"3\"`); send it back as `If-Match` on PUT, PATCH or DELETE to change the rule only if nobody changed it since. Example: `GET /api/rules/{id}`.");
        group.MapPost("/", Create)
            .WithName("CreateRule")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Add a rule; it applies to every message from now on, after the rules already there.")
            .WithDescription($"At most {RuleStore.MaxRules} rules: past that a create is a `409` whose `errors` names `rules` and whose `limit` says how many. Lengths: `name` {RuleCompiler.MaxNameLength} characters, `filter` {FilterParser.MaxLength}, `replace.pattern` {RuleCompiler.MaxPatternLength}, `replace.replacement` {RuleCompiler.MaxReplacementLength} (longer is a `400` naming the field); `delayMs` 1–{RuleCompiler.MaxDelayMs}. " + "Actions: `drop`; `replace` with `{pattern, replacement}` (regex on text messages, or hex bytes on binary messages with `binary: true`); `delay` with `delayMs`; `hold` (held like intercept, released via /api/intercept/held). The new rule is at `version` 1 (also its `ETag`). Example body: `{\"name\": \"rename user\", \"filter\": \"~wq & ~text\", \"action\": \"replace\", \"replace\": {\"pattern\": \"alice\", \"replacement\": \"bob\"}}`.")
            .WithMetadata(new RequestExample("""{"name": "rename user", "filter": "~wq & ~text", "action": "replace", "replace": {"pattern": "alice", "replacement": "bob"}}"""));
        group.MapPut("/{id}", Update)
            .WithName("UpdateRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .WithSummary("Replace a rule's definition, keeping its id, position and hit counter.")
            .WithDescription("Same body as create; the rule's `version` goes up by one. " + PreconditionHelp + " Example body: `{\"filter\": \"~ws & ~b ping\", \"action\": \"delay\", \"delayMs\": 500, \"enabled\": false}` with `If-Match: \"3\"`.")
            .WithMetadata(new RequestExample("""{"name": "slow pongs", "filter": "~ws & ~b pong", "action": "delay", "delayMs": 500, "enabled": true}"""));
        group.MapPatch("/{id}", Patch)
            .WithName("PatchRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .WithSummary("Switch a rule on or off, leaving the rest of its definition as it is now.")
            .WithDescription("Only `enabled` (JSON merge patch: `application/json` or `application/merge-patch+json`). Unlike a PUT of the whole rule as it was read, this cannot undo a change someone else made to its filter or action meanwhile; switching it to what it already is changes nothing (same `version`). " + PreconditionHelp + " Example body: `{\"enabled\": false}`.")
            .WithMetadata(new RequestExample("""{"enabled": false}"""));
        group.MapPost("/{id}/move", Move)
            .WithName("MoveRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Change where a rule runs in the order; answers all rules in their new order.")
            .WithDescription("Rules run on every message in order, so a `drop` before a `replace` decides first. `index` 0 runs first. The rule's definition and `version` stay as they are. Example body: `{\"index\": 0}`.")
            .WithMetadata(new RequestExample("""{"index": 0}"""));
        group.MapDelete("/{id}", Delete)
            .WithName("DeleteRule")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .WithSummary("Remove a rule.")
            .WithDescription("With `If-Match`, only if the rule is still at that version (else `412`, and it stays). Example: `DELETE /api/rules/{id}`.");
        return app;
    }

    private static readonly string PreconditionHelp = IfMatch.Help("the rule");

    private static Results<Ok<RuleView>, ProblemHttpResult> Get(RuleStore rules, HttpResponse response, string id)
    {
        if (rules.Get(id) is not { } rule)
        {
            return NoSuchRule(id);
        }

        response.Headers.ETag = IfMatch.ETag(rule.Version);
        return TypedResults.Ok(rule.ToView());
    }

    private static ProblemHttpResult NoSuchRule(string id) => ApiProblems.NotFound($"No rule with id '{id}'.");

    private static Results<Created<RuleView>, ValidationProblem, ProblemHttpResult> Create(RuleStore rules, HttpResponse response, RuleRequest request)
    {
        var id = Guid.NewGuid().ToString("N")[..12];
        if (!RuleCompiler.TryCompile(id, request, out var rule, out var problem))
        {
            return problem;
        }

        // Checked by the store as it adds: a check here first would let concurrent creates past the limit.
        if (!rules.TryAdd(rule, out var added))
        {
            return TooManyRules();
        }

        response.Headers.ETag = IfMatch.ETag(added.Version);
        return TypedResults.Created($"/api/rules/{id}", added.ToView());
    }

    /// <summary>
    /// A 409, not a 400: the body is fine, the collection is full. Shaped like the validation problems (errors names
    /// what is at fault, here the rules collection) so scripts and the dashboard read it the same way.
    /// </summary>
    private static ProblemHttpResult TooManyRules() => ApiProblems.ForField(
        StatusCodes.Status409Conflict,
        "Too many rules",
        "rules",
        $"WsWeb keeps at most {RuleStore.MaxRules} rules, and every one runs on every message; delete one (DELETE /api/rules/{{id}}) before adding another.",
        extensions: new Dictionary<string, object?> { ["limit"] = RuleStore.MaxRules });

    private static Results<Ok<RuleView>, ValidationProblem, ProblemHttpResult> Update(RuleStore rules, HttpContext context, string id, RuleRequest request)
    {
        if (!IfMatch.TryRead(context.Request, out var ifMatch, out var invalid))
        {
            return invalid;
        }

        if (rules.Get(id) is null)
        {
            return NoSuchRule(id);
        }

        if (!RuleCompiler.TryCompile(id, request, out var rule, out var problem))
        {
            return problem;
        }

        return Written(context.Response, id, ifMatch, rules.TryReplace(rule, ifMatch, out var current), current);
    }

    private static Results<Ok<RuleView>, ValidationProblem, ProblemHttpResult> Patch(RuleStore rules, HttpContext context, string id, RulePatch request)
    {
        if (!IfMatch.TryRead(context.Request, out var ifMatch, out var invalid))
        {
            return invalid;
        }

        if (request.Enabled is not { } enabled)
        {
            return ApiProblems.Invalid("enabled", "enabled (true or false) is required; it is the one field PATCH changes. Use PUT to change the rest of the rule.");
        }

        return Written(context.Response, id, ifMatch, rules.TrySetEnabled(id, enabled, ifMatch, out var current), current);
    }

    private static Results<Ok<RuleView>, ValidationProblem, ProblemHttpResult> Written(HttpResponse response, string id, IfMatch? ifMatch, RuleWrite result, Rule? current)
    {
        switch (result)
        {
            case RuleWrite.NotFound:
                return NoSuchRule(id);
            case RuleWrite.VersionMismatch:
                return ifMatch!.Failed(response, $"Rule '{id}'", current!.Version, current.ToView());
            default:
                response.Headers.ETag = IfMatch.ETag(current!.Version);
                return TypedResults.Ok(current.ToView());
        }
    }

    private static Results<Ok<List<RuleView>>, ValidationProblem, ProblemHttpResult> Move(RuleStore rules, string id, RuleMove request)
    {
        var count = rules.Rules.Length;
        if (rules.Get(id) is null)
        {
            return NoSuchRule(id);
        }

        if (request.Index is not { } index || index < 0 || index >= count)
        {
            return ApiProblems.Invalid("index", $"index is the rule's new place: 0 (runs first) to {count - 1}, as there are {count} rules.");
        }

        return rules.TryMove(id, index) ? TypedResults.Ok(rules.Rules.Select(r => r.ToView()).ToList()) : NoSuchRule(id);
    }

    private static Results<NoContent, ValidationProblem, ProblemHttpResult> Delete(RuleStore rules, HttpContext context, string id)
    {
        if (!IfMatch.TryRead(context.Request, out var ifMatch, out var invalid))
        {
            return invalid;
        }

        return rules.TryRemove(id, ifMatch, out var current) switch
        {
            RuleWrite.NotFound => NoSuchRule(id),
            RuleWrite.VersionMismatch => ifMatch!.Failed(context.Response, $"Rule '{id}'", current!.Version, current.ToView()),
            _ => TypedResults.NoContent(),
        };
    }
}
