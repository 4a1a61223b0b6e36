using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;

namespace WsWeb.Tests.Dashboard;

/// <summary>
/// Renders a Razor component to HTML with the framework's <see cref="HtmlRenderer"/> and parses it with
/// AngleSharp, so tests query the markup as a browser would (the part of bUnit this project can use).
/// </summary>
internal static class ComponentRenderer
{
    public static async Task<IDocument> RenderAsync<TComponent>(Dictionary<string, object?>? parameters = null, Action<IServiceCollection>? services = null)
        where TComponent : IComponent
    {
        var html = await RenderHtmlAsync<TComponent>(parameters, services);
        var parser = new HtmlParser();
        return await parser.ParseDocumentAsync($"<!doctype html><html><body><table><tbody id=\"__rows\"></tbody></table><div id=\"__root\">{html}</div></body></html>");
    }

    /// <summary>Rows (<c>&lt;tr&gt;</c>) only parse inside a table body.</summary>
    public static async Task<IDocument> RenderRowsAsync<TComponent>(Dictionary<string, object?> parameters)
        where TComponent : IComponent
    {
        var html = await RenderHtmlAsync<TComponent>(parameters, null);
        return await new HtmlParser().ParseDocumentAsync($"<!doctype html><html><body><table><tbody>{html}</tbody></table></body></html>");
    }

    public static async Task<string> RenderHtmlAsync<TComponent>(Dictionary<string, object?>? parameters, Action<IServiceCollection>? services)
        where TComponent : IComponent
    {
        var collection = new ServiceCollection();
        collection.AddLogging();
        services?.Invoke(collection);
        await using var provider = collection.BuildServiceProvider();
        var loggerFactory = provider.GetRequiredService<ILoggerFactory>();
        await using var renderer = new HtmlRenderer(provider, loggerFactory);
        return await renderer.Dispatcher.InvokeAsync(async () =>
        {
            var output = await renderer.RenderComponentAsync<TComponent>(ParameterView.FromDictionary(parameters ?? []));
            return output.ToHtmlString();
        });
    }
}
