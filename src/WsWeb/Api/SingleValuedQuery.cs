namespace WsWeb.Api;

/// <summary>
/// Refuses a query parameter given more than once. Minimal APIs bind a repeated parameter to a string by
/// joining the values with commas, so <c>?filter=~q&amp;filter=~s</c> became the filter "~q,~s" and failed with
/// "unknown operator '~q,'", which names neither the cause nor the fix.
/// </summary>
internal static class SingleValuedQuery
{
    public static TBuilder RejectRepeatedQuery<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            foreach (var (name, values) in context.HttpContext.Request.Query)
            {
                if (values.Count > 1)
                {
                    var hint = name.Equals("filter", StringComparison.OrdinalIgnoreCase) ? " Combine expressions in one filter with & or |." : "";
                    return ApiProblems.Invalid(name, $"{name} was given {values.Count} times; give it once.{hint}");
                }
            }

            return await next(context);
        });
}
