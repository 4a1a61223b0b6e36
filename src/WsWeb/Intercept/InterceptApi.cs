using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Api;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Proxy;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Intercept;

/// <summary>Intercept: hold matching messages before they are forwarded, then release, edit or drop them.</summary>
internal static class InterceptApi
{
    private const double MinTimeoutSeconds = 0.001;
    private const double MaxTimeoutSeconds = 24 * 60 * 60;

    public static IEndpointRouteBuilder MapInterceptApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/intercept").WithTags("Intercept").RejectRepeatedQuery();
        group.MapGet("/", Get)
            .WithName("GetIntercept")
            .WithSummary("The intercept filter in force, its version and how many messages are held.")
            .WithDescription("The `ETag` header is the settings' `version` in quotes; send it as `If-Match` on PUT or DELETE. Example: `GET /api/intercept` → `{\"enabled\": true, \"filter\": \"~wq\", \"timeoutSeconds\": null, \"timeoutAction\": \"release\", \"held\": 0, \"version\": 4}`.");
        group.MapPut("/", Set)
            .WithName("SetIntercept")
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .WithSummary("Hold every message matching a filter before it is forwarded.")
            .WithDescription("Replaces all the settings (filter, timeout, timeout action): a field left out is reset, not kept. Held messages keep their order per direction: later messages of the same direction wait behind them, while the other direction and ping/pong keep flowing. With `timeoutSeconds`, a message nobody decides on is released (or dropped, with `timeoutAction: \"drop\"`) and the choice is recorded as its resolution. The timeout and its action apply to messages held from now on; messages already held keep the `timeoutAt` (and action) they were held with. " + PreconditionHelp + " Example body: `{\"filter\": \"~wq & ~b secret\", \"timeoutSeconds\": 30, \"timeoutAction\": \"release\"}`.")
            .WithMetadata(new RequestExample("""{"filter": "~wq & ~b secret", "timeoutSeconds": 30, "timeoutAction": "release"}"""));
        group.MapDelete("/", Clear)
            .WithName("ClearIntercept")
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .WithSummary("Stop holding new messages.")
            .WithDescription("Messages already held stay held until released, dropped or timed out, or until their flow ends (all at once: `POST /api/intercept/held/release` or `/held/drop`). " + PreconditionHelp + " Example: `DELETE /api/intercept`.");
        group.MapGet("/held", ListHeld)
            .WithName("ListHeld")
            .WithSummary("Held messages in the order they were caught.")
            .WithDescription("Contents are whole unless `preview=true`, which cuts each content to its first 4096 bytes (the shape the hub's HeldChanged sends) and sets `truncated` on the items that were cut; read those with `GET /api/flows/{flowId}/messages/{index}/content`. Example: `GET /api/intercept/held` → `[{\"flowId\": \"…\", \"index\": 4, \"message\": {…}, \"truncated\": false}]`.");
        group.MapPost("/held/release", ReleaseAll)
            .WithName("ReleaseAllHeld")
            .WithSummary("Forward every held message unchanged, or those matching `filter` (mitmweb's resume all).")
            .WithDescription("Messages go on in the order they were caught, so each flow's keep their order. Only messages held when the call runs are released: with intercept still on, a later message that matches is held in turn. A message someone else decided meanwhile (a user, a script, the timeout, its flow's end) is not counted, nor one whose peer was already sent a close (it could not be delivered: it stays held, for a drop). A regex in `filter` that times out is a 400 naming `filter`, and nothing is released. Example: `POST /api/intercept/held/release?filter=~wq%20%26%20~d%20example.com` → `{\"released\": 3}`.");
        group.MapPost("/held/drop", DropAll)
            .WithName("DropAllHeld")
            .WithSummary("Drop every held message, or those matching `filter`: none reaches its peer.")
            .WithDescription("Each stays in its flow with `dropped: true` and resolution `dropped`. A message someone else decided meanwhile is not counted. A regex in `filter` that times out is a 400 naming `filter`, and nothing is dropped. Example: `POST /api/intercept/held/drop?filter=~b%20password` → `{\"dropped\": 2}`.");
        group.MapPost("/held/{flowId}/{index}/release", ReleaseAsync)
            .WithName("ReleaseHeld")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Forward a held message, unchanged or with new content.")
            .WithDescription("Without a body the message goes on unchanged. With `content` (same encodings as inject) it is forwarded edited; the message keeps `originalContent`. Example body: `{\"content\": \"{\\\"type\\\":\\\"auth\\\",\\\"token\\\":\\\"redacted\\\"}\", \"encoding\": \"utf8\"}`.")
            .WithMetadata(new RequestExample("""{"content": "{\"type\":\"auth\",\"token\":\"redacted\"}", "encoding": "utf8"}"""))
            .WithMetadata(new MessageBodySizeLimit(app.ServiceProvider))
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapPost("/held/{flowId}/{index}/drop", Drop)
            .WithName("DropHeld")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Drop a held message: it never reaches the peer.")
            .WithDescription("The message stays in the flow with `dropped: true`. Example: `POST /api/intercept/held/{flowId}/4/drop`.");
        return app;
    }

    private static readonly string PreconditionHelp = IfMatch.Help("the settings");

    private static Ok<InterceptState> Get(InterceptService intercept, InterceptSettingsStore settings, HttpResponse response) =>
        Answer(response, intercept, settings.Current);

    private static Results<Ok<InterceptState>, ValidationProblem, ProblemHttpResult> Set(
        InterceptService intercept, InterceptSettingsStore settings, HttpContext context, InterceptRequest request)
    {
        if (!IfMatch.TryRead(context.Request, out var ifMatch, out var invalid))
        {
            return invalid;
        }

        if (request.Enabled == false)
        {
            return ApiProblems.Invalid("enabled", "A PUT turns intercept on; DELETE /api/intercept turns it off.");
        }

        if (string.IsNullOrWhiteSpace(request.Filter))
        {
            return ApiProblems.Invalid("filter", "filter is required; DELETE /api/intercept turns intercept off.");
        }

        if (!FlowFilter.TryParse(request.Filter, out var filter, out var error))
        {
            return ApiProblems.Invalid("filter", error.Message);
        }

        // A positive value below a millisecond (1e-300) would round to no timeout wait at all.
        if (request.TimeoutSeconds is { } seconds && (!double.IsFinite(seconds) || seconds < MinTimeoutSeconds || seconds > MaxTimeoutSeconds))
        {
            return ApiProblems.Invalid("timeoutSeconds", $"timeoutSeconds must be at least 0.001 (1 ms) and at most {MaxTimeoutSeconds}.");
        }

        bool? drop = request.TimeoutAction?.ToLowerInvariant() switch
        {
            null or "release" => false,
            "drop" => true,
            _ => null,
        };
        if (drop is null)
        {
            return ApiProblems.Invalid("timeoutAction", $"timeoutAction must be 'release' or 'drop', not '{request.TimeoutAction}'.");
        }

        return Write(intercept, settings, context.Response, ifMatch, new InterceptSettings(filter, request.TimeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : null, drop.Value));
    }

    private static Results<Ok<InterceptState>, ValidationProblem, ProblemHttpResult> Clear(
        InterceptService intercept, InterceptSettingsStore settings, HttpContext context)
    {
        if (!IfMatch.TryRead(context.Request, out var ifMatch, out var invalid))
        {
            return invalid;
        }

        return Write(intercept, settings, context.Response, ifMatch, null);
    }

    private static Results<Ok<InterceptState>, ValidationProblem, ProblemHttpResult> Write(
        InterceptService intercept, InterceptSettingsStore settings, HttpResponse response, IfMatch? ifMatch, InterceptSettings? next)
    {
        if (!settings.TrySet(next, ifMatch, out var version))
        {
            var current = settings.Current;
            return ifMatch!.Failed(response, "The intercept settings", current.Version, State(intercept, current), plural: true);
        }

        // The state as written, with its version, even if another write follows at once: the ETag must match the body.
        return Answer(response, intercept, (next, version));
    }

    private static Ok<InterceptState> Answer(HttpResponse response, InterceptService intercept, (InterceptSettings? Settings, long Version) current)
    {
        response.Headers.ETag = IfMatch.ETag(current.Version);
        return TypedResults.Ok(State(intercept, current));
    }

    // Whole contents by default: a REST caller asks once, for the messages it is about to decide on, unlike the
    // hub's push on every change. A poller can ask for previews.
    private static Ok<List<HeldView>> ListHeld(InterceptService intercept, HoldResolutions resolutions, bool? preview) =>
        TypedResults.Ok(intercept.Snapshot().Select(held => HeldView.From(held, resolutions, preview == true)).ToList());

    private static Results<Ok<MessageView>, ValidationProblem, ProblemHttpResult> ReleaseAsync(
        InterceptService intercept, FlowStore store, HoldResolutions resolutions, LiveRelays live, ProxyOptions options, string flowId, long index, ReleaseRequest? request)
    {
        if (FindHeld(intercept, store, resolutions, flowId, index, out var held) is { } problem)
        {
            return problem;
        }

        var toClient = !held.Message.FromClient;
        if (live.CloseSentTo(held.Flow, toClient))
        {
            // Released now it would be dropped on the floor; say so, and leave the choice (drop) to the user.
            return ApiProblems.Conflict($"The {(toClient ? "client" : "server")} of flow {flowId} was already sent a close: message {index} can no longer be delivered. Drop it, or it ends with the flow.");
        }

        byte[]? content = null;
        if (request?.Content is not null || request?.Encoding is not null)
        {
            if (ContentCodec.TryDecode(request.Content, request.Encoding, held.Message.IsText, options.MaxMessageSize, out var bytes) is { } invalid)
            {
                return ApiProblems.Invalid(invalid.Field, invalid.Message);
            }

            content = bytes;
        }

        var edited = content is not null && !content.AsSpan().SequenceEqual(held.Message.Content);
        if (!intercept.TryResolve(held, drop: false, content, edited ? HoldResolutions.Edited : HoldResolutions.Released))
        {
            return DecidedMeanwhile(held, flowId, index);
        }

        return TypedResults.Ok(MessageView.From(held.Message, resolutions.Get(held.Message)));
    }

    private static Results<Ok<MessageView>, ProblemHttpResult> Drop(InterceptService intercept, FlowStore store, HoldResolutions resolutions, string flowId, long index)
    {
        if (FindHeld(intercept, store, resolutions, flowId, index, out var held) is { } problem)
        {
            return problem;
        }

        if (!intercept.TryResolve(held, drop: true, newContent: null, HoldResolutions.Dropped))
        {
            return DecidedMeanwhile(held, flowId, index);
        }

        return TypedResults.Ok(MessageView.From(held.Message, resolutions.Get(held.Message)));
    }

    private static Results<Ok<HeldReleased>, ValidationProblem> ReleaseAll(InterceptService intercept, LiveRelays live, HttpRequest request, string? filter, CancellationToken cancellationToken)
    {
        if (ApiProblems.UnreadBody(request) is { } bodyProblem)
        {
            return bodyProblem;
        }

        if (!TryMatchHeld(intercept, filter, cancellationToken, out var matching, out var problem))
        {
            return problem;
        }

        var released = 0;
        foreach (var held in matching)
        {
            // Released now it would be dropped on the floor (see ReleaseAsync): it stays held for the user to drop.
            if (!live.CloseSentTo(held.Flow, !held.Message.FromClient) && intercept.TryResolve(held, drop: false, newContent: null, HoldResolutions.Released))
            {
                released++;
            }
        }

        return TypedResults.Ok(new HeldReleased(released));
    }

    private static Results<Ok<HeldDropped>, ValidationProblem> DropAll(InterceptService intercept, HttpRequest request, string? filter, CancellationToken cancellationToken)
    {
        if (ApiProblems.UnreadBody(request) is { } bodyProblem)
        {
            return bodyProblem;
        }

        if (!TryMatchHeld(intercept, filter, cancellationToken, out var matching, out var problem))
        {
            return problem;
        }

        var dropped = matching.Count(held => intercept.TryResolve(held, drop: true, newContent: null, HoldResolutions.Dropped));
        return TypedResults.Ok(new HeldDropped(dropped));
    }

    /// <summary>
    /// The held messages (in hold order) that <paramref name="filter"/> matches, all of them without one. Every message
    /// is matched before any is decided, so a filter that is invalid or times out part way decides nothing.
    /// </summary>
    private static bool TryMatchHeld(InterceptService intercept, string? filter, CancellationToken cancellationToken, out List<HeldMessage> matching, [NotNullWhen(false)] out ValidationProblem? problem)
    {
        matching = [];
        if (!ApiProblems.TryParseFilter(filter, out var parsed, out problem))
        {
            return false;
        }

        try
        {
            matching = parsed is null
                ? intercept.Snapshot()
                : [.. intercept.Snapshot().Where(held => parsed.Matches(held.Flow, held.Message, FilterMode.Query, cancellationToken))];
        }
        catch (FilterTimeoutException e)
        {
            problem = ApiProblems.FilterTooSlow(e);
            return false;
        }

        return true;
    }

    // The winner's resolution as its claim recorded it: HoldResolutions may still say "held" at this point.
    private static ProblemHttpResult DecidedMeanwhile(HeldMessage held, string flowId, long index) =>
        ApiProblems.Conflict($"Message {index} of flow {flowId} was decided meanwhile ({held.Resolution}).");

    private static ProblemHttpResult? FindHeld(InterceptService intercept, FlowStore store, HoldResolutions resolutions, string flowId, long index, out HeldMessage held)
    {
        held = intercept.Find(flowId, index)!;
        if (held is not null)
        {
            return null;
        }

        if (store.Get(flowId) is not { } flow)
        {
            return ApiProblems.FlowNotFound(flowId);
        }

        return flow.WebSocket?.Find(index) is { } message
            ? ApiProblems.Conflict($"Message {index} of flow {flowId} is not held{(resolutions.Get(message) is { } r ? $" (it was {r})" : "")}.")
            : ApiProblems.NotFound($"Flow {flowId} has no message with index {index}.");
    }

    /// <summary>The settings as the API, the hub's InterceptChanged and the intercept page show them.</summary>
    internal static InterceptState State(InterceptService intercept, (InterceptSettings? Settings, long Version) current) => current.Settings is { } settings
        ? new InterceptState(true, settings.Filter.Expression, settings.Timeout?.TotalSeconds, settings.DropOnTimeout ? "drop" : "release", intercept.HeldCount, settings.Filter.RelayTimeouts, current.Version)
        : new InterceptState(false, null, null, "release", intercept.HeldCount, 0, current.Version);
}
