namespace WsWeb.Api;

/// <summary>Endpoint metadata: a JSON request body example that the OpenAPI document shows.</summary>
internal sealed record RequestExample(string Json);
