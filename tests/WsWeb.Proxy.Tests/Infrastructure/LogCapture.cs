using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>Keeps every log line (category, level, text), as a provider for a host or as one logger.</summary>
internal sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public ILogger<T> CreateLogger<T>() => new Logger<T>(new SingleFactory(this));

    public ILoggerFactory CreateLoggerFactory() => new SingleFactory(this);

    public IEnumerable<string> Messages(LogLevel atLeast = LogLevel.Trace) => Entries.Where(e => e.Level >= atLeast).Select(e => e.Message);

    public void Dispose()
    {
    }

    private sealed class SingleFactory(LogCapture capture) : ILoggerFactory
    {
        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => capture.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture.Entries.Enqueue((category, logLevel, formatter(state, exception)));
    }
}
