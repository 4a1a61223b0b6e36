namespace WsWeb.Api;

/// <summary>
/// HEAD wherever GET works (RFC 9110 §9.3.2): minimal APIs map GET alone, so <c>curl -I /api/flows</c> was a 405.
/// Kestrel sends no body for a HEAD request whatever the handler writes (it goes by the method the request came
/// with), so answering HEAD as the GET gives the GET's status and headers, and nothing else.
/// </summary>
internal static class HeadRequests
{
    /// <summary>Before routing, so HEAD finds the GET endpoints.</summary>
    public static IApplicationBuilder UseHeadAsGet(this IApplicationBuilder app) =>
        app.Use((context, next) =>
        {
            if (HttpMethods.IsHead(context.Request.Method))
            {
                context.Request.Method = HttpMethods.Get;
            }

            return next(context);
        });
}
