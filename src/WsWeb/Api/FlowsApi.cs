using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Core.Addons;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Intercept;
using WsWeb.Proxy;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Api;

/// <summary>Flows and their messages: list, read, inject, close and kill.</summary>
internal static class FlowsApi
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static IEndpointRouteBuilder MapFlowsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/flows").WithTags("Flows").RejectRepeatedQuery();

        group.MapGet("/", ListFlows)
            .WithName("ListFlows")
            .WithSummary("List flows, newest first.")
            .WithDescription("Optional `filter` is a filter expression (docs/filters.md), e.g. `~websocket & ~d example.com`; a regex in it that times out (catastrophic backtracking) is a 400 naming `filter`. Page with `skip` and `limit` (default 100, at most 1000). Example: `GET /api/flows?filter=~websocket&limit=20`.");
        group.MapGet("/{id}", GetFlow)
            .WithName("GetFlow")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("One flow: handshake, connections with TLS details, WebSocket close and ping/pong counts.")
            .WithDescription("Example: `GET /api/flows/6f1c…`. Message contents are read with /messages.");
        group.MapGet("/{id}/messages", ListMessages)
            .WithName("ListMessages")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Messages of a WebSocket flow in recorded order, after a cursor.")
            .WithDescription("`after` is the index of the last message already read (default: from the start); `next` in the answer is the cursor for the following page: the last message looked at, matched by the filter or not (`after` when there was none), so a script tails a flow by passing it back. `filter` applies per message, e.g. `~wq & ~text`; a regex in it that times out is a 400 naming `filter`. Example: `GET /api/flows/{id}/messages?after=41&limit=50&filter=~ws`.");
        group.MapGet("/{id}/messages/{index}/content", GetContent)
            .WithName("GetMessageContent")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream", additionalContentTypes: ["text/plain"])
            .WithSummary("Raw bytes of one message: text/plain for text messages, application/octet-stream for binary.")
            .WithDescription("`original=true` returns the content as it arrived when the message was edited. Example: `curl -o msg.bin /api/flows/{id}/messages/3/content`.");
        group.MapActivity();
        foreach (var (side, isRequest) in new[] { ("request", true), ("response", false) })
        {
            group.MapGet($"/{{id}}/{side}/content", (FlowStore store, HttpResponse response, string id, bool? decode) => GetBody(store, response, id, isRequest, decode))
                .WithName(isRequest ? "GetRequestContent" : "GetResponseContent")
                .ProducesProblem(StatusCodes.Status404NotFound)
                .ProducesProblem(StatusCodes.Status409Conflict)
                .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
                .WithSummary($"The {side} body of a flow as recorded (mitmweb's {side}/content.data).")
                .WithDescription(BodyDescription);
        }
        group.MapPost("/{id}/messages", InjectAsync)
            .WithName("InjectMessage")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .WithSummary("Inject a text or binary message toward the client or the server of a live flow.")
            .Produces<InjectQueued>(StatusCodes.Status202Accepted)
            .WithDescription("Answers 201 once the message is recorded and forwarded, with the recorded message. One that has not gone out within `wait` seconds (default 10, at most 300) answers 202: it is queued behind a held message of its direction, or for a peer that is not reading, and goes out in its turn. Injected messages pass through rules and intercept like any other. Send large binary content as base64: the body may be the maximum message size in base64 plus 64 KiB (413 above). Toward each peer at most twice the maximum message size of injected content may wait to go out (a peer that is not reading): past it a `429`, and nothing is queued. Example body: `{\"toClient\": true, \"type\": \"text\", \"content\": \"hello\", \"encoding\": \"utf8\"}`.")
            .WithMetadata(new RequestExample("""{"toClient": true, "type": "text", "content": "{\"type\":\"ping\"}", "encoding": "utf8"}"""))
            .WithMetadata(new MessageBodySizeLimit(app.ServiceProvider))
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapPost("/{id}/close", CloseAsync)
            .WithName("CloseFlow")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Close a live WebSocket toward the client, the server or both, with a code and reason.")
            .WithDescription("Codes 1000-4999 except the reserved 1004, 1005, 1006, 1015 and the unassigned 1016-2999; reason at most 123 bytes of UTF-8. A peer that does not take its close within 5 s (it stopped reading) has its connection dropped, which ends the flow with an error saying so, and the answer is a 409 saying the same. Example body: `{\"target\": \"both\", \"code\": 4000, \"reason\": \"maintenance\"}`.")
            .WithMetadata(new RequestExample("""{"target": "both", "code": 4000, "reason": "maintenance"}"""));
        group.MapPost("/{id}/kill", Kill)
            .WithName("KillFlow")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Abort the connections of a live flow at once (mitmproxy's kill).")
            .WithDescription("A WebSocket gets no close frames; the flow records 1006 and the error \"Connection killed.\" (after a close still under way, it keeps that close's code). A plain HTTP exchange still under way (a long poll, a stalled upload, a replay's response) or a handshake waiting for its answer has its connection aborted, with the same error. A flow that is not live is a 409. Example: `POST /api/flows/{id}/kill`.");
        group.MapDelete("/{id}", Delete)
            .WithName("DeleteFlow")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Remove a finished flow from the store (mitmweb's delete).")
            .WithDescription("A live flow is a 409: close or kill it first, so a delete never cuts a connection. Dashboards are told through the hub's `FlowsRemoved`. Example: `DELETE /api/flows/{id}`.");
        group.MapDelete("/", Clear)
            .WithName("ClearFlows")
            .WithSummary("Remove every finished flow, or those matching `filter` (mitmweb's clear).")
            .WithDescription("Live flows stay and are counted in `live`. A regex in `filter` that times out is a 400 naming `filter`, and nothing is removed. Example: `DELETE /api/flows?filter=~websocket%20%26%20~d%20example.com`.");
        return app;
    }

    private static Results<NoContent, ProblemHttpResult> Delete(FlowStore store, string id)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        if (flow.IsLive)
        {
            return ApiProblems.Conflict($"Flow {flow.Id} is live; close or kill it first, then delete it.");
        }

        // Gone meanwhile (eviction, another delete): what was asked for is done all the same.
        store.Remove(flow.Id);
        return TypedResults.NoContent();
    }

    private static Results<Ok<FlowsCleared>, ValidationProblem> Clear(FlowStore store, HttpRequest request, string? filter, CancellationToken cancellationToken)
    {
        if (ApiProblems.UnreadBody(request) is { } bodyProblem)
        {
            return bodyProblem;
        }

        if (!ApiProblems.TryParseFilter(filter, out var parsed, out var filterProblem))
        {
            return filterProblem;
        }

        List<HttpFlow> matching;
        try
        {
            // Every flow is matched before any is removed, so a filter that times out part way removes nothing.
            matching = store.Query(parsed is null ? null : flow => parsed.Matches(flow, FilterMode.Query, cancellationToken));
        }
        catch (FilterTimeoutException e)
        {
            return ApiProblems.FilterTooSlow(e);
        }

        var (removed, live) = (0, 0);
        foreach (var flow in matching)
        {
            if (flow.IsLive)
            {
                live++;
            }
            else if (store.Remove(flow.Id))
            {
                removed++;
            }
        }

        return TypedResults.Ok(new FlowsCleared(removed, live));
    }

    private static Results<Ok<FlowPage>, ValidationProblem> ListFlows(FlowStore store, string? filter, int? skip, int? limit, CancellationToken cancellationToken)
    {
        if (ValidatePaging(skip, limit) is { } pagingProblem)
        {
            return pagingProblem;
        }

        if (!ApiProblems.TryParseFilter(filter, out var parsed, out var filterProblem))
        {
            return filterProblem;
        }

        var take = limit ?? DefaultLimit;
        List<HttpFlow> flows;
        try
        {
            flows = store.Query(parsed is null ? null : flow => parsed.Matches(flow, FilterMode.Query, cancellationToken), skip ?? 0, take);
        }
        catch (FilterTimeoutException e)
        {
            return ApiProblems.FilterTooSlow(e);
        }

        return TypedResults.Ok(new FlowPage([.. flows.Select(FlowSummary.From)], skip ?? 0, take));
    }

    private static Results<Ok<FlowDetail>, ProblemHttpResult> GetFlow(FlowStore store, string id) =>
        store.Get(id) is { } flow ? TypedResults.Ok(FlowDetail.From(flow)) : ApiProblems.FlowNotFound(id);

    private static Results<Ok<MessagePage>, ValidationProblem, ProblemHttpResult> ListMessages(
        FlowStore store, HoldResolutions resolutions, string id, string? filter, long? after, int? limit, CancellationToken cancellationToken)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        if (ValidatePaging(0, limit) is { } pagingProblem)
        {
            return pagingProblem;
        }

        if (after < -1)
        {
            return ApiProblems.Invalid("after", "after must be -1 or a message index.");
        }

        if (!ApiProblems.TryParseFilter(filter, out var parsed, out var filterProblem))
        {
            return filterProblem;
        }

        if (!flow.IsWebSocket)
        {
            return ApiProblems.NotWebSocket(id);
        }

        MessageWindow window;
        try
        {
            window = MessagePaging.After(flow, resolutions, parsed, after ?? -1, limit ?? DefaultLimit, cancellationToken);
        }
        catch (FilterTimeoutException e)
        {
            return ApiProblems.FilterTooSlow(e);
        }

        return TypedResults.Ok(new MessagePage(window.Rows, window.Cursor));
    }

    private static Results<FileContentHttpResult, ProblemHttpResult> GetContent(FlowStore store, string id, long index, bool? original)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        if (!flow.IsWebSocket)
        {
            return ApiProblems.NotWebSocket(id);
        }

        if (flow.WebSocket?.Find(index) is not { } message)
        {
            return ApiProblems.NotFound($"Flow {id} has no message with index {index} (unknown, or trimmed by retention).");
        }

        var content = message.Content;
        var type = message.Type;
        if (original == true && message.OriginalContent is { } originalContent)
        {
            content = originalContent;
            type = message.OriginalType ?? type;
        }

        return TypedResults.File(content, type == Opcode.Text ? "text/plain; charset=utf-8" : "application/octet-stream");
    }

    private const string BodyDescription = "Always `application/octet-stream` with `X-Content-Type-Options: nosniff`: a recorded HTML page must not run as the dashboard's own. The body is what WsWeb recorded, the first 1 MiB at most: `X-Content-Truncated: true` says it was cut, and `X-Content-Length` gives the whole body's length. `decode=true` undoes its `Content-Encoding` (gzip, deflate, br; up to 4 MiB of output, as the dashboard shows it); one that does not decode is a 409 saying why. A flow with no response yet is a 404. Example: `curl -o page.html '/api/flows/{id}/response/content?decode=true'`.";

    /// <summary>What the dashboard shows of a plain HTTP body, for scripts: as recorded, or decoded.</summary>
    private static Results<FileContentHttpResult, ProblemHttpResult> GetBody(FlowStore store, HttpResponse response, string id, bool request, bool? decode)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        var (headers, content, length, truncated) = request
            ? (flow.Request.Headers, flow.Request.Content, flow.Request.ContentLength, flow.Request.ContentTruncated)
            : flow.Response is { } r ? (r.Headers, r.Content, r.ContentLength, r.ContentTruncated)
            : default;
        if (headers is null)
        {
            return ApiProblems.NotFound($"Flow {id} has no response{(flow.IsLive ? " yet" : "")}.");
        }

        var bytes = content ?? [];
        if (decode == true)
        {
            var decoded = ContentEncodings.Decode(headers.GetJoined("Content-Encoding"), bytes, Dashboard.Fmt.MaxDecodedBytes, complete: !truncated);
            if (decoded.Problem is not null)
            {
                return ApiProblems.Conflict($"The {(request ? "request" : "response")} body of flow {id} {decoded.Problem}; read it without decode=true for the bytes as recorded.");
            }

            bytes = decoded.Content;
            truncated |= decoded.Cut;
        }

        response.Headers["X-Content-Truncated"] = truncated ? "true" : "false";
        response.Headers["X-Content-Length"] = length.ToString(CultureInfo.InvariantCulture);
        response.Headers.XContentTypeOptions = "nosniff";
        return TypedResults.File(bytes, "application/octet-stream");
    }

    /// <summary>How long an inject waits for its message to go out before it answers 202 (queued) instead.</summary>
    internal static readonly TimeSpan DefaultInjectWait = TimeSpan.FromSeconds(10);

    internal const int MaxInjectWaitSeconds = 300;

    private static async Task<Results<Created<MessageView>, Accepted<InjectQueued>, ValidationProblem, ProblemHttpResult>> InjectAsync(
        FlowStore store, IWebSocketControl control, ProxyOptions options, HoldResolutions resolutions, InterceptService intercept, TimeProvider time,
        string id, InjectRequest request, double? wait, CancellationToken cancellationToken)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        if (wait is { } seconds && (!double.IsFinite(seconds) || seconds < 0 || seconds > MaxInjectWaitSeconds))
        {
            return ApiProblems.Invalid("wait", $"wait is the seconds to wait for the message to go out before answering 202 (queued): 0 to {MaxInjectWaitSeconds}.");
        }

        if (request.ToClient is not { } toClient)
        {
            return ApiProblems.Invalid("toClient", "toClient is required: true sends to the client, false to the server.");
        }

        if (ParseType(request.Type) is not { } isText)
        {
            return ApiProblems.Invalid("type", $"type must be 'text' or 'binary', not '{request.Type}'.");
        }

        if (ContentCodec.TryDecode(request.Content, request.Encoding, isText, options.MaxMessageSize, out var bytes) is { } problem)
        {
            return ApiProblems.Invalid(problem.Field, problem.Message);
        }

        if (!flow.IsWebSocket || !control.IsLive(flow))
        {
            return ApiProblems.Conflict(LiveRelays.NotLive(flow));
        }

        WebSocketMessage message;
        try
        {
            // Not the request's token: the message goes out whether or not its sender still waits for it. One that
            // later cannot go out (the flow closed) is recorded as dropped; if nobody waits any more, nobody is told.
            var sending = control.InjectAsync(flow, toClient, bytes, isText, CancellationToken.None);
            _ = sending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            message = await sending.WaitAsync(wait is { } w ? TimeSpan.FromSeconds(w) : DefaultInjectWait, time, cancellationToken);
        }
        catch (WsWeb.Proxy.WebSockets.InjectionQueueFullException ex)
        {
            return ApiProblems.TooMany("Injection queue full", ex.Message);
        }
        catch (InvalidOperationException ex)
        {
            // Closed between the check and the send, or before the queued message went out.
            return ApiProblems.Conflict(ex.Message);
        }
        catch (TimeoutException)
        {
            return TypedResults.Accepted($"/api/flows/{id}/messages", new InjectQueued(id, toClient, true, QueuedBehind(intercept, flow, toClient)));
        }

        return TypedResults.Created($"/api/flows/{id}/messages/{message.Index}/content", MessageView.From(message, resolutions.Get(message)));
    }

    private static string QueuedBehind(InterceptService intercept, HttpFlow flow, bool toClient) =>
        intercept.Snapshot().Find(h => h.Flow == flow && h.Message.FromClient != toClient) is { } held
            ? $"Queued behind held message #{held.Message.Index}: it goes out once that one is released or dropped."
            : $"Queued: what goes to the {(toClient ? "client" : "server")} ahead of it has not all gone out (the {(toClient ? "client" : "server")} is not reading, or a rule or addon is still on a message); it goes out in its turn.";

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> CloseAsync(
        FlowStore store, IWebSocketControl control, string id, CloseRequest? request, CancellationToken cancellationToken)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        CloseTarget? target = (request?.Target?.ToLowerInvariant() ?? "both") switch
        {
            "both" => CloseTarget.Both,
            "client" => CloseTarget.Client,
            "server" => CloseTarget.Server,
            _ => null,
        };
        if (target is null)
        {
            return ApiProblems.Invalid("target", $"target must be 'client', 'server' or 'both', not '{request?.Target}'.");
        }

        var code = request?.Code ?? 1000;
        if (CloseCodeProblem(code) is { } codeProblem)
        {
            return ApiProblems.Invalid("code", codeProblem);
        }

        var reason = request?.Reason ?? "";
        if (Encoding.UTF8.GetByteCount(reason) > 123)
        {
            return ApiProblems.Invalid("reason", $"reason is {Encoding.UTF8.GetByteCount(reason)} bytes of UTF-8; a close frame has room for 123.");
        }

        if (!flow.IsWebSocket || !control.IsLive(flow))
        {
            return ApiProblems.Conflict(LiveRelays.NotLive(flow));
        }

        try
        {
            await control.CloseAsync(flow, target.Value, code, reason, cancellationToken);
        }
        catch (InvalidOperationException ex)
        {
            return ApiProblems.Conflict(ex.Message);
        }

        return TypedResults.NoContent();
    }

    private static Results<NoContent, ProblemHttpResult> Kill(FlowStore store, IWebSocketControl control, string id)
    {
        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        // Any live flow, as in mitmproxy: a plain exchange or a handshake under way has its connection aborted.
        if (!flow.IsLive)
        {
            return ApiProblems.Conflict(flow.IsWebSocket || flow.IsImported ? LiveRelays.NotLive(flow) : $"Flow {flow.Id} has ended; it has no connection left to kill.");
        }

        try
        {
            control.Kill(flow);
        }
        catch (InvalidOperationException ex)
        {
            return ApiProblems.Conflict(ex.Message);
        }

        return TypedResults.NoContent();
    }

    /// <summary>
    /// Why a close code may not be sent, or null if it may: the codes the frame codec accepts from a peer
    /// (<see cref="WebSocketCloseCodes.IsValidOnWire"/>), so WsWeb never sends one it would refuse.
    /// </summary>
    internal static string? CloseCodeProblem(int code) => WebSocketCloseCodes.IsValidOnWire(code) ? null : code switch
    {
        < 1000 or > 4999 => $"code {code} is outside 1000-4999.",
        1004 or 1005 or 1006 or 1015 => $"code {code} is reserved and must not be sent in a close frame.",
        _ => $"code {code} is not assigned (1016-2999 are reserved for future RFCs).",
    };

    internal static bool? ParseType(string? type) => type?.ToLowerInvariant() switch
    {
        null or "text" => true,
        "binary" => false,
        _ => null,
    };

    private static ValidationProblem? ValidatePaging(int? skip, int? limit)
    {
        if (skip < 0)
        {
            return ApiProblems.Invalid("skip", "skip must be 0 or more.");
        }

        return limit is < 1 or > MaxLimit ? ApiProblems.Invalid("limit", $"limit must be between 1 and {MaxLimit}.") : null;
    }
}
