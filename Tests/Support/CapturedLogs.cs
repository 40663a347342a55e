using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClusterQueue.Tests.Support;

/// <summary>One log entry a node wrote: its level, event id, category and text.</summary>
public sealed record CapturedLog(LogLevel Level, EventId EventId, string Category, string Message);

/// <summary>
/// Collects what a running node logs from the moment it is attached (the node's logger factory refreshes the loggers
/// it already made), so a test can assert that something was, or was not, logged.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _entries = new();

    public IReadOnlyList<CapturedLog> Entries => [.. _entries];

    /// <summary>Attaches a new capture to the node's logging.</summary>
    public static CapturedLogs Attach(IServiceProvider services)
    {
        var logs = new CapturedLogs();
        services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        return logs;
    }

    public IReadOnlyList<CapturedLog> AtLeast(LogLevel level) => [.. _entries.Where(e => e.Level >= level)];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs._entries.Enqueue(new CapturedLog(logLevel, eventId, category, formatter(state, exception) + (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")));
    }
}
