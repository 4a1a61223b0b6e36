using System.ComponentModel;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Forwarding;

namespace WsWeb.Api;

/// <summary>Replaying a flow: mitmproxy's client replay, and for a WebSocket Burp's Repeater "reconnect" (mitmproxy does not replay those).</summary>
internal static class ReplayApi
{
    public static IEndpointRouteBuilder MapReplayApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/flows").WithTags("Flows").RejectRepeatedQuery()
            .MapPost("/{id}/replay", ReplayAsync)
            .WithName("ReplayFlow")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .WithSummary("Send a flow's request again as a new flow; for a WebSocket, open a new connection with WsWeb as its client.")
            .WithDescription($"Answers 201 with the new flow (`replay: \"request\"`, `replayOf` the original) once the server's answer began. A WebSocket handshake goes as recorded (cookies and all) with a fresh Sec-WebSocket-Key; on 101 the new flow is live, so messages are injected toward the server with POST /{{newId}}/messages and it is closed with /close. `resend: true` also sends what the server got from the original's client, in order, as far as WsWeb still holds it. A plain request goes with its recorded body, and its new flow is live until the response body has arrived. A refusal (e.g. 403), an unreachable server or one that has not begun its answer within 30 s is recorded on the new flow as for any other. Works for live, finished and imported flows. 409: a CONNECT, a request body recorded only in part, `resend` for a plain request, or WsWeb shutting down. 429: as many replays as WsWeb keeps live at once ({FlowReplay.MaxLiveReplays}) are live. Example body: `{{\"resend\": true}}` (the body is optional).")
            .WithMetadata(new RequestExample("""{"resend": true}"""));
        return app;
    }

    private static async Task<Results<Created<FlowSummary>, ProblemHttpResult>> ReplayAsync(
        FlowStore store, FlowReplay replay, string id, ReplayRequest? request, CancellationToken cancellationToken)
    {
        if (store.Get(id) is not { } original)
        {
            return ApiProblems.FlowNotFound(id);
        }

        try
        {
            var flow = await replay.StartAsync(original, request?.Resend ?? false, cancellationToken);
            return TypedResults.Created($"/api/flows/{flow.Id}", FlowSummary.From(flow));
        }
        catch (ReplayRefusedException ex)
        {
            return ApiProblems.Conflict(ex.Message);
        }
        catch (ReplayLimitException ex)
        {
            return ApiProblems.TooMany("Too many live replays", ex.Message);
        }
    }
}

/// <summary>How to replay a flow.</summary>
public sealed record ReplayRequest(
    [property: Description("true also sends the original's client messages again, in order; default false.")] bool? Resend);
