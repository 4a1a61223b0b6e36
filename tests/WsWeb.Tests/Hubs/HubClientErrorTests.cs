using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Hubs;

/// <summary>A host whose log lines are recorded, for asserting what a client's mistake logs.</summary>
public sealed class LoggedWsWebApp : IAsyncLifetime
{
    internal RecordingLoggerProvider Log { get; } = new();

    internal WsWebApp App { get; }

    public LoggedWsWebApp() => App = new WsWebApp(services => services.AddLogging(logging => logging.AddProvider(Log).AddFilter<RecordingLoggerProvider>(null, LogLevel.Debug)));

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

/// <summary>A client's mistake on the hub is answered with a readable error and is not logged as a server error.</summary>
public sealed class HubClientErrorTests(LoggedWsWebApp host) : IClassFixture<LoggedWsWebApp>
{
    [Theory]
    [InlineData("SubscribeFlow")]
    [InlineData("UnsubscribeFlow")]
    public async Task A_null_flow_id_is_a_hub_error_that_says_so_and_no_error_is_logged(string method)
    {
        await using var hub = await HubTestClient.ConnectAsync(host.App.WebPort);

        var error = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync(method, [null]));

        Assert.Contains($"HubException: {method} needs the id of a flow; it got null.", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("ArgumentNullException", error.Message, StringComparison.Ordinal);
        AssertNoErrorLogged(method);

        // The connection stays usable.
        await hub.InvokeAsync("SubscribeFlows");
    }

    [Fact]
    public async Task An_unknown_flow_is_a_hub_error_logged_below_error()
    {
        await using var hub = await HubTestClient.ConnectAsync(host.App.WebPort);

        var error = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync("SubscribeFlow", "no-such-flow"));

        Assert.Contains("Flow no-such-flow was not found.", error.Message, StringComparison.Ordinal);
        AssertNoErrorLogged("SubscribeFlow");
        Assert.Contains(host.Log.Entries, e => e.Level == LogLevel.Debug && e.Exception?.Message == "Flow no-such-flow was not found.");
    }

    [Theory]
    [InlineData("SubscribeFlow", "[123]")]
    [InlineData("SubscribeFlow", "[{}]")]
    [InlineData("SubscribeFlow", "[true]")]
    [InlineData("SubscribeFlow", "[]")]
    [InlineData("SubscribeFlow", """["a","b"]""")]
    [InlineData("UnsubscribeFlow", """[["id"]]""")]
    [InlineData("SubscribeFlows", "[1]")]
    public async Task Arguments_of_the_wrong_type_or_number_get_signalrs_fixed_answer_as_documented(string method, string arguments)
    {
        await using var hub = await HubTestClient.ConnectAsync(host.App.WebPort);
        var values = System.Text.Json.JsonSerializer.Deserialize<System.Text.Json.JsonElement[]>(arguments)!.Cast<object?>().ToArray();

        var error = await Assert.ThrowsAsync<HubErrorException>(() => hub.InvokeAsync(method, values));

        // docs/hub.md, "Errors": SignalR binds the arguments before the hub or a hub filter runs, and says why only
        // with EnableDetailedErrors, which would also hand every client the messages of real server exceptions.
        Assert.Equal($"Failed to invoke '{method}' due to an error on the server.", error.Message);
        AssertNoErrorLogged(method);
        Assert.Contains(host.Log.Entries, e => e.Level == LogLevel.Debug && e.Message == $"Parameters to hub method '{method}' are incorrect." && e.Exception is InvalidDataException);

        // The connection stays usable.
        await hub.InvokeAsync("SubscribeFlows");
    }

    private void AssertNoErrorLogged(string method)
    {
        var errors = host.Log.Entries.Where(e => e.Level >= LogLevel.Error).ToList();
        Assert.True(errors.Count == 0, $"after {method}: " + string.Join("\n", errors.Select(e => $"{e.Category}: {e.Message} {e.Exception}")));
    }
}
