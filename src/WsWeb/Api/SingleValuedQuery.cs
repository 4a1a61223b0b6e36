namespace WsWeb.Api;

/// <summary>
/// Refuses a query parameter given more than once. Minimal APIs bind a repeated parameter by joining the values
/// with commas, so <c>?filter=~q&amp;filter=~s</c> became the filter "~q,~s" and failed with "unknown operator
/// '~q,'", and <c>?limit=5&amp;limit=5</c> failed to bind "5,5" as a number: neither names the cause nor the fix.
/// </summary>
/// <remarks>
/// A middleware rather than an endpoint filter: filters run after binding, so a number or boolean parameter would
/// fail there first.
/// </remarks>
internal static class SingleValuedQuery
{
    /// <summary>Marks the endpoints whose query parameters must each be given once.</summary>
    public static TBuilder RejectRepeatedQuery<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(Marker.Instance);

    /// <summary>Answers a repeated query parameter of a marked endpoint with a problem naming it, before binding.</summary>
    public static IApplicationBuilder UseSingleValuedQuery(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<Marker>() is not null)
            {
                foreach (var (name, values) in context.Request.Query)
                {
                    if (values.Count > 1)
                    {
                        var hint = name.Equals("filter", StringComparison.OrdinalIgnoreCase) ? " Combine expressions in one filter with & or |." : "";
                        await ApiProblems.Invalid(name, $"{name} was given {values.Count} times; give it once.{hint}").ExecuteAsync(context);
                        return;
                    }
                }
            }

            await next(context);
        });

    private sealed class Marker
    {
        public static readonly Marker Instance = new();
    }
}
