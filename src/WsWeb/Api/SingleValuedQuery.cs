using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Mvc;

namespace WsWeb.Api;

/// <summary>
/// Refuses a query parameter given more than once, or one the endpoint does not take. Minimal APIs bind a repeated
/// parameter by joining the values with commas, so <c>?filter=~q&amp;filter=~s</c> became the filter "~q,~s" and
/// failed with "unknown operator '~q,'", and <c>?limit=5&amp;limit=5</c> failed to bind "5,5" as a number: neither
/// names the cause nor the fix. And they ignore a name they do not know, so <c>DELETE /api/flows?fliter=…</c> cleared
/// every flow, as if no filter had been given.
/// </summary>
/// <remarks>
/// A middleware rather than an endpoint filter: filters run after binding, so a number or boolean parameter would
/// fail there first.
/// </remarks>
internal static class SingleValuedQuery
{
    private static readonly ConditionalWeakTable<Endpoint, string[]?> Taken = [];

    /// <summary>Marks the endpoints whose query parameters must each be given once, and be ones they take.</summary>
    public static TBuilder RejectRepeatedQuery<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(Marker.Instance);

    /// <summary>Answers a repeated or unknown query parameter of a marked endpoint with a problem naming it, before binding.</summary>
    public static IApplicationBuilder UseSingleValuedQuery(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            if (context.GetEndpoint() is { } endpoint && endpoint.Metadata.GetMetadata<Marker>() is not null)
            {
                var taken = Taken.GetValue(endpoint, QueryNames);
                foreach (var (name, values) in context.Request.Query)
                {
                    if (values.Count > 1)
                    {
                        var hint = name.Equals("filter", StringComparison.OrdinalIgnoreCase) ? " Combine expressions in one filter with & or |." : "";
                        await ApiProblems.Invalid(name, $"{name} was given {values.Count} times; give it once.{hint}").ExecuteAsync(context);
                        return;
                    }

                    if (taken is not null && !taken.Contains(name, StringComparer.OrdinalIgnoreCase))
                    {
                        var takes = taken.Length == 0 ? "takes no query parameters" : $"takes {string.Join(", ", taken)}";
                        await ApiProblems.Invalid(name, $"{name} is not a query parameter of this endpoint, which {takes}. Nothing was done.").ExecuteAsync(context);
                        return;
                    }
                }
            }

            await next(context);
        });

    /// <summary>
    /// The query names the endpoint's handler binds: its simple parameters that are not route values. Null when the
    /// handler is not known (nothing is refused then).
    /// </summary>
    private static string[]? QueryNames(Endpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<MethodInfo>() is not { } handler)
        {
            return null;
        }

        var route = endpoint is RouteEndpoint r ? r.RoutePattern.Parameters.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase) : [];
        return [.. handler.GetParameters()
            .Where(p => p.Name is not null && !route.Contains(p.Name) && IsQueryType(p.ParameterType))
            .Select(p => p.GetCustomAttribute<FromQueryAttribute>()?.Name ?? p.Name!)];
    }

    private static bool IsQueryType(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t == typeof(string) || t == typeof(decimal) || t.IsEnum;
    }

    private sealed class Marker
    {
        public static readonly Marker Instance = new();
    }
}
