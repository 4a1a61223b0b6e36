using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace WsWeb.Api;

/// <summary>The OpenAPI document at /openapi/v1.json and Swagger UI at /swagger on the web listener.</summary>
internal static class ApiDocumentation
{
    public const string DocumentPath = "/openapi/v1.json";

    public static IServiceCollection AddApiDocumentation(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "WsWeb REST API";
                document.Info.Description = "Drive the WsWeb WebSocket proxy from scripts: list flows and messages, inject, hold and edit, rules, close and kill. Errors are RFC 7807 problem details; validation errors name the field at fault.";
                return Task.CompletedTask;
            });
            options.AddOperationTransformer(AddRequestExample);
            // The endpoints are all mapped before the first document is asked for: their body types are found once.
            HashSet<Type>? requestBodyTypes = null;
            options.AddSchemaTransformer((schema, context, cancellationToken) =>
                OpenOnlyRequestBodies(schema, context, requestBodyTypes ??= RequestBodyTypes(context.ApplicationServices)));
        });

    public static WebApplication MapApiDocumentation(this WebApplication app)
    {
        app.MapOpenApi(DocumentPath);
        app.UseSwaggerUI(options =>
        {
            options.SwaggerEndpoint(DocumentPath, "WsWeb REST API v1");
            options.RoutePrefix = "swagger";
            options.DocumentTitle = "WsWeb REST API";
        });
        return app;
    }

    /// <summary>
    /// Request bodies refuse unknown fields (<see cref="BadRequestProblems"/>), and the schema generator, reading the
    /// same serializer options, says so on every object it describes, answers too. An answer is not closed: problem
    /// details carry extensions (errors, currentVersion, current), and answers may gain fields. Only the types read from
    /// a request body, and the objects in them, keep "additionalProperties": false.
    /// </summary>
    private static Task OpenOnlyRequestBodies(OpenApiSchema schema, OpenApiSchemaTransformerContext context, HashSet<Type> requestBodyTypes)
    {
        if (!schema.AdditionalPropertiesAllowed && !requestBodyTypes.Contains(context.JsonTypeInfo.Type))
        {
            schema.AdditionalPropertiesAllowed = true;
        }

        return Task.CompletedTask;
    }

    private static HashSet<Type> RequestBodyTypes(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var pending = new Stack<Type>(services.GetRequiredService<EndpointDataSource>().Endpoints
            .SelectMany(endpoint => endpoint.Metadata.GetOrderedMetadata<IAcceptsMetadata>())
            .Select(accepts => accepts.RequestType)
            .OfType<Type>());
        var types = new HashSet<Type>();
        while (pending.TryPop(out var type))
        {
            if (!types.Add(type) || !options.TryGetTypeInfo(type, out var info))
            {
                continue;
            }

            foreach (var property in info.Properties)
            {
                pending.Push(property.PropertyType);
            }

            if (info.ElementType is { } element)
            {
                pending.Push(element);
            }
        }

        return types;
    }

    /// <summary>Puts an endpoint's <see cref="RequestExample"/> on its JSON request body, so Swagger UI pre-fills it.</summary>
    private static Task AddRequestExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var example = context.Description.ActionDescriptor.EndpointMetadata.OfType<RequestExample>().FirstOrDefault();
        if (example is not null && operation.RequestBody?.Content is { } content)
        {
            foreach (var (mediaType, body) in content)
            {
                if (mediaType.Contains("json", StringComparison.OrdinalIgnoreCase))
                {
                    body.Example = JsonNode.Parse(example.Json);
                }
            }
        }

        return Task.CompletedTask;
    }
}
