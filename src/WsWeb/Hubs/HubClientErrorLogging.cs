using Microsoft.AspNetCore.SignalR;

namespace WsWeb.Hubs;

/// <summary>
/// Logs a <see cref="HubException"/> from a flows hub method at Debug instead of Error. SignalR logs every
/// exception a hub method throws as "Failed to invoke hub method" at Error, but a HubException is how the hub
/// answers a client's mistake (an unknown flow, a null id, too many subscriptions): not a server fault worth
/// an error line, just as the REST API does not log a 400. Other exceptions keep their Error.
/// </summary>
internal static class HubClientErrorLogging
{
    // The category of DefaultHubDispatcher<THub>'s logger (generic arguments are left out of category names).
    private const string DispatcherCategory = "Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher";

    /// <summary>
    /// Builds the flows hub's connection handler, which creates its dispatcher's logger, with a factory that
    /// demotes only that logger; the application's logging is left as it is.
    /// </summary>
    public static IServiceCollection AddFlowsHubConnectionHandler(this IServiceCollection services) =>
        services.AddSingleton(provider => ActivatorUtilities.CreateInstance<HubConnectionHandler<FlowsHub>>(
            provider, new DemotingLoggerFactory(provider.GetRequiredService<ILoggerFactory>())));

    private sealed class DemotingLoggerFactory(ILoggerFactory inner) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName)
        {
            var logger = inner.CreateLogger(categoryName);
            return categoryName == DispatcherCategory ? new DemotingLogger(logger) : logger;
        }

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose()
        {
            // The inner factory belongs to the container.
        }
    }

    private sealed class DemotingLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Error && exception is HubException)
            {
                logLevel = LogLevel.Debug;
            }

            if (inner.IsEnabled(logLevel))
            {
                inner.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
