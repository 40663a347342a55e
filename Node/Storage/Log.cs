namespace ClusterQueue.Node.Storage;

internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "SQLite store opened at {Path} (WAL, synchronous={Synchronous})")]
    public static partial void Opened(ILogger logger, string path, string synchronous);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "SQLite commit of {Count} operations failed; none of them is acknowledged")]
    public static partial void CommitFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "SQLite rollback after a failed commit also failed")]
    public static partial void RollbackFailed(ILogger logger, Exception exception);
}
