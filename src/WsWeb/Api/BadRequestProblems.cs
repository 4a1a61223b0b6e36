using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using WsWeb.Core.Filters;

namespace WsWeb.Api;

/// <summary>
/// Turns request binding failures (malformed JSON, a string where a number belongs, a missing body)
/// into validation problems that name the field, like the API's own checks do. Without this, minimal
/// APIs answer a bare 400 with no body.
/// </summary>
internal static partial class BadRequestProblems
{
    public static IServiceCollection AddApiProblemDetails(this IServiceCollection services)
    {
        // A field the endpoint does not know, or one sent twice, is refused rather than ignored (or the last one taken):
        // {"enable": false} for "enabled" would otherwise make an active rule, {"encodng": "base64"} send the base64 text.
        // A number in quotes is refused as a boolean in quotes is: the web defaults read "1000" as 1000, which the API
        // never promised and its OpenAPI document then advertised (as integer or string, with a pattern).
        // These options only bind request bodies: answers write the same JSON as before, and SignalR and the
        // import/export formats have serializer options of their own.
        services.ConfigureHttpJsonOptions(options =>
        {
            options.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            options.SerializerOptions.AllowDuplicateProperties = false;
            options.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });

        // Binding failures throw, so the exception handler below can describe them.
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            if (context.Exception is BadHttpRequestException badRequest)
            {
                context.ProblemDetails.Status = badRequest.StatusCode;
                context.ProblemDetails.Title = "One or more validation errors occurred.";
                context.ProblemDetails.Detail = null;
                var (field, message) = Describe(context.HttpContext, badRequest);
                context.ProblemDetails.Extensions["errors"] = ApiProblems.Errors(field, message);
            }
            else if (context.Exception is FilterTimeoutException timeout)
            {
                // Endpoints answer this themselves; pages that filter while rendering (the dashboard's flow list and
                // flow page) cannot, and land here. Same answer either way.
                context.ProblemDetails.Status = StatusCodes.Status400BadRequest;
                context.ProblemDetails.Title = "One or more validation errors occurred.";
                context.ProblemDetails.Detail = null;
                context.ProblemDetails.Extensions["errors"] = ApiProblems.Errors("filter", timeout.Message);
            }
            else if (context.Exception is null && !context.ProblemDetails.Extensions.ContainsKey("errors")
                && BodyStatusProblem(context.HttpContext, context.ProblemDetails.Status) is { } bodyProblem)
            {
                // The same 413 and 415 also come without an exception (binding sets the status and stops); they
                // should name the field like the thrown ones do.
                context.ProblemDetails.Title = "One or more validation errors occurred.";
                context.ProblemDetails.Extensions["errors"] = ApiProblems.Errors(bodyProblem.Field, bodyProblem.Message);
            }
        });
        services.Configure<ExceptionHandlerOptions>(options =>
        {
            options.StatusCodeSelector = ex => ex switch
            {
                BadHttpRequestException badRequest => badRequest.StatusCode,
                FilterTimeoutException => StatusCodes.Status400BadRequest,
                _ => StatusCodes.Status500InternalServerError,
            };

            // A client's bad input is not a server error worth an error-level log line.
            options.SuppressDiagnosticsCallback = context => context.Exception is BadHttpRequestException or FilterTimeoutException;
        });
        return services;
    }

    private static (string Field, string Message)? BodyStatusProblem(HttpContext context, int? status) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => ("body", context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit
            ? $"The request body is larger than the {limit} bytes this endpoint accepts."
            : "The request body is too large."),
        StatusCodes.Status415UnsupportedMediaType => ("Content-Type", $"Expected a JSON body (Content-Type: application/json), not '{context.Request.ContentType}'."),
        _ => null,
    };

    private static (string Field, string Message) Describe(HttpContext context, BadHttpRequestException badRequest)
    {
        if (badRequest.StatusCode == StatusCodes.Status415UnsupportedMediaType)
        {
            // Its message quotes the media type it got, which the search below would take for a field name.
            return ("Content-Type", badRequest.Message);
        }

        if (IsMissingBody(badRequest))
        {
            return (JsonBodyErrors.BodyField, "A JSON object is required as the request body.");
        }

        if (badRequest.InnerException is JsonException json)
        {
            // The framework's "Failed to read parameter "InjectRequest request" from the request body as JSON." names
            // the handler's C# parameter, which is no field of the API: the JSON path and position say where.
            return JsonBodyErrors.Describe(json, BodyType(context));
        }

        // "Failed to bind parameter "int? limit" from "x"." names a query or route parameter, and the handler's C# type.
        if (FailedBinding().Match(badRequest.Message) is { Success: true } failed)
        {
            return (failed.Groups["name"].Value, NotA(failed.Groups["type"].Value, failed.Groups["value"].Value));
        }

        if (MissingParameter().Match(badRequest.Message) is { Success: true } missing)
        {
            return (missing.Groups["name"].Value, $"'{missing.Groups["name"].Value}' is required.");
        }

        return (JsonBodyErrors.BodyField, badRequest.Message);
    }

    /// <summary>What a query or route value should have been, in the API's words rather than .NET's type names.</summary>
    private static string NotA(string type, string value)
    {
        const int MaxQuoted = 64;
        var quoted = value.Length > MaxQuoted ? string.Concat(value.AsSpan(0, MaxQuoted), "…") : value;
        // The framework writes the type as C# would ("int", "long?") or as its runtime name ("Nullable<Double>").
        var name = type.TrimEnd('?');
        if (name.StartsWith("Nullable<", StringComparison.Ordinal) && name.EndsWith('>'))
        {
            name = name["Nullable<".Length..^1];
        }

        return name.ToLowerInvariant() switch
        {
            "int" or "int32" => $"'{quoted}' is not an integer from {int.MinValue} to {int.MaxValue}.",
            "long" or "int64" => $"'{quoted}' is not an integer from {long.MinValue} to {long.MaxValue}.",
            "double" => $"'{quoted}' is not a number.",
            "bool" or "boolean" => $"'{quoted}' is not true or false.",
            _ => $"'{quoted}' is not a valid value here.",
        };
    }

    [GeneratedRegex("""^Failed to bind parameter "(?<type>\S+) (?<name>[^"\s]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex FailedBinding();

    [GeneratedRegex("""^Required parameter "(?<type>\S+) (?<name>[^"\s]+)" was not provided from [^"]+\.$""", RegexOptions.CultureInvariant)]
    private static partial Regex MissingParameter();

    /// <summary>
    /// What the failed endpoint reads its body as, so the answer can name the expected type and the known fields. The
    /// exception handler has cleared the request's endpoint by now; its feature keeps it.
    /// </summary>
    private static JsonTypeInfo? BodyType(HttpContext context)
    {
        var endpoint = context.Features.Get<IExceptionHandlerFeature>()?.Endpoint ?? context.GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType is not { } type)
        {
            return null;
        }

        var options = context.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        return options.TryGetTypeInfo(type, out var info) ? info : null;
    }

    /// <summary>
    /// No body, or the JSON <c>null</c>: the framework's messages ("Implicit body inferred for parameter…", "Required
    /// parameter … was not provided from body.") name the handler's C# parameter, which is no field of the API.
    /// </summary>
    private static bool IsMissingBody(BadHttpRequestException badRequest) =>
        badRequest.InnerException is null
        && (badRequest.Message.StartsWith("Implicit body inferred", StringComparison.Ordinal)
            || badRequest.Message.EndsWith("was not provided from body.", StringComparison.Ordinal));
}
