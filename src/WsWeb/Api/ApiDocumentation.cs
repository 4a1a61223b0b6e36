using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
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
