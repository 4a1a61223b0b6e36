using WsWeb.Api;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Components;
using WsWeb.Components.Shared;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Intercept;

namespace WsWeb.Dashboard;

/// <summary>
/// The dashboard: Razor component pages rendered on the server (static SSR), HTML fragments for htmx and
/// the page script under <c>/ui</c>, and the static files (wwwroot, with the npm libraries in wwwroot/lib).
/// </summary>
internal static class DashboardEndpoints
{
    public static IServiceCollection AddDashboard(this IServiceCollection services)
    {
        services.AddRazorComponents();
        services.AddAntiforgery();
        return services;
    }

    public static WebApplication UseDashboard(this WebApplication app)
    {
        app.UseStaticFiles();
        app.UseAntiforgery();
        return app;
    }

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapRazorComponents<App>();

        var ui = app.MapGroup("/ui").ExcludeFromDescription();
        ui.MapGet("/filter-check", (string? filter) =>
            new RazorComponentResult<FilterCheck>(new Dictionary<string, object?> { [nameof(FilterCheck.Expression)] = filter }));

        ui.MapGet("/flows/rows", FlowRowsFragment);

        ui.MapGet("/client-tls", (WsWeb.Proxy.Listener.TlsHandshakeLog handshakes) =>
            new RazorComponentResult<ClientTlsStatus>(ClientTlsStatus.From(handshakes)));

        // Without a filter the total is the store's count, cheap enough to ask after every live batch.
        ui.MapGet("/flows/count", (FlowStore store) => TypedResults.Text(Fmt.Num(store.Count)));

        ui.MapGet("/flows/{id}/header", FlowHeaderFragment);
        ui.MapGet("/flows/{id}/messages", MessageRowsFragment);
        ui.MapGet("/flows/{id}/messages/{index:long}/view", MessageViewFragment);
        ui.MapGet("/intercept/held", (InterceptService intercept, HoldResolutions resolutions) =>
            new RazorComponentResult<HeldList>(new Dictionary<string, object?> { [nameof(HeldList.Held)] = FlowQueries.Held(intercept, resolutions) }));
        return app;
    }

    /// <summary>The flow list's rows for a filter, with the total that matches (X-Total): what the list page reads on a change.</summary>
    private static Results<RazorComponentResult<FlowRows>, ValidationProblem> FlowRowsFragment(HttpContext context, FlowStore store, InterceptService intercept, string? filter)
    {
        List<Api.FlowSummary> flows;
        int total;
        FilterParseError? error;
        try
        {
            flows = FlowQueries.List(store, filter, out total, out error, context.RequestAborted);
        }
        catch (FilterTimeoutException e)
        {
            // The page keeps the rows it shows (it ignores failed refreshes); a script sees why.
            return ApiProblems.FilterTooSlow(e);
        }

        if (error is not null)
        {
            // Not "no flow matches": nothing was matched at all. The page shows the error under its filter box.
            return ApiProblems.Invalid("filter", error.Message);
        }

        context.Response.Headers["X-Total"] = Fmt.Num(total);
        return new RazorComponentResult<FlowRows>(new Dictionary<string, object?> { [nameof(FlowRows.Flows)] = flows, [nameof(FlowRows.Held)] = intercept.HeldByFlow() });
    }

    /// <summary>A flow page's header (state, counts, close), rendered again as the flow changes.</summary>
    private static Results<RazorComponentResult<FlowHeader>, NotFound> FlowHeaderFragment(FlowStore store, string id) =>
        store.Get(id) is { } flow
            ? new RazorComponentResult<FlowHeader>(new Dictionary<string, object?>
            {
                [nameof(FlowHeader.Flow)] = Api.FlowDetail.From(flow),
                [nameof(FlowHeader.ReplayRefused)] = FlowHeader.RefusesReplay(flow),
                [nameof(FlowHeader.OriginalKept)] = flow.ReplayOf is { } original && store.Get(original) is not null,
            })
            : TypedResults.NotFound();

    /// <summary>
    /// A window of a flow's message rows: after a cursor (catching up) or before one (scrolling up), with the cursor read
    /// to (X-Cursor) and whether older rows exist (X-More-Before).
    /// </summary>
    private static Results<RazorComponentResult<MessageRows>, NotFound, ValidationProblem> MessageRowsFragment(
        HttpContext context, FlowStore store, HoldResolutions resolutions, string id, long? before, long? after, string? filter)
    {
        if (store.Get(id) is not { } flow)
        {
            return TypedResults.NotFound();
        }

        // The page only ever asks with a filter that parses (it applies no other); whoever else asks gets the
        // problem /ui/flows/rows and the API answer, not a bare string.
        if (!ApiProblems.TryParseFilter(filter, out var parsed, out var filterProblem))
        {
            return filterProblem;
        }

        MessageWindow window;
        try
        {
            window = after is { } a
                ? MessagePaging.After(flow, resolutions, parsed, a, cancellationToken: context.RequestAborted)
                : MessagePaging.Before(flow, resolutions, parsed, before, cancellationToken: context.RequestAborted);
        }
        catch (FilterTimeoutException e)
        {
            return ApiProblems.FilterTooSlow(e);
        }

        context.Response.Headers["X-Cursor"] = Fmt.Num(window.Cursor);
        context.Response.Headers["X-More-Before"] = window.MoreBefore ? "1" : "0";
        return new RazorComponentResult<MessageRows>(new Dictionary<string, object?>
        {
            [nameof(MessageRows.Messages)] = window.Rows,
            [nameof(MessageRows.FlowStart)] = flow.TimestampCreated,
        });
    }

    /// <summary>One message as the flow page's side pane shows it (text, JSON or hex).</summary>
    private static Results<RazorComponentResult<MessageContent>, NotFound> MessageViewFragment(FlowStore store, HoldResolutions resolutions, string id, long index, string? view)
    {
        if (store.Get(id) is not { } flow || flow.WebSocket?.Find(index) is not { } message)
        {
            return TypedResults.NotFound();
        }

        return new RazorComponentResult<MessageContent>(new Dictionary<string, object?>
        {
            [nameof(MessageContent.FlowId)] = id,
            [nameof(MessageContent.Message)] = Api.MessageView.From(message, resolutions.Get(message)),
            [nameof(MessageContent.View)] = view,
            [nameof(MessageContent.Live)] = flow.IsLive,
        });
    }
}

/// <summary>Queries the pages and fragments share.</summary>
internal static class FlowQueries
{
    public const int FlowListLimit = 500;

    /// <summary>The newest <see cref="FlowListLimit"/> flows matching <paramref name="filter"/>, and how many match in all.</summary>
    /// <exception cref="FilterTimeoutException">A regex of the filter timed out. Thrown rather than reported in
    /// <paramref name="error"/> so that a page rendering this list ends with the exception handler's 400 naming
    /// <c>filter</c>, instead of showing a list the filter could not decide.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the client left).</exception>
    public static List<Api.FlowSummary> List(
        FlowStore store, string? filter, out int total, out FilterParseError? error, CancellationToken cancellationToken = default)
    {
        error = null;
        total = 0;
        FlowFilter? parsed = null;
        if (!string.IsNullOrWhiteSpace(filter) && !FlowFilter.TryParse(filter, out parsed, out error))
        {
            return [];
        }

        // One pass over a snapshot: counting every match is what tells the user the list is cut.
        var flows = store.Snapshot();
        var list = new List<Api.FlowSummary>(Math.Min(flows.Count, FlowListLimit));
        for (var i = flows.Count - 1; i >= 0; i--)
        {
            if (parsed is not null && !parsed.Matches(flows[i], FilterMode.Query, cancellationToken))
            {
                continue;
            }

            total++;
            if (list.Count < FlowListLimit)
            {
                list.Add(Api.FlowSummary.From(flows[i]));
            }
        }

        return list;
    }

    /// <summary>
    /// Previews: the intercept page re-reads this list on every HeldChanged. A card whose preview is cut loads the
    /// whole content once, over REST, before it can be edited (dashboard.js).
    /// </summary>
    public static List<HeldView> Held(InterceptService intercept, HoldResolutions resolutions) =>
        [.. intercept.Snapshot().Select(held => HeldView.From(held, resolutions, preview: true))];
}
