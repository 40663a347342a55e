namespace ClusterQueue.Node.Storage;

internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "SQLite store opened at {Path} (WAL, synchronous={Synchronous})")]
    public static partial void SqliteOpened(ILogger logger, string path, string synchronous);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Commit of {Count} operations failed; none of them is acknowledged")]
    public static partial void CommitFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "Rollback after a failed commit also failed")]
    public static partial void RollbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "PostgreSQL store opened at {Host}/{Database} with {Writers} writer connections")]
    public static partial void PostgresOpened(ILogger logger, string? host, string? database, int writers);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "A PostgreSQL writer connection broke; opening a new one")]
    public static partial void WriterReconnecting(ILogger logger, Exception? exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "PostgreSQL schema migrated from version {From} to {To}")]
    public static partial void Migrated(ILogger logger, int from, int to);

    [LoggerMessage(EventId = 106, Level = LogLevel.Critical, Message = "Flushing the SQLite WAL to disk failed; {Count} committed operations are not acknowledged and their senders will retry")]
    public static partial void SyncFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 107, Level = LogLevel.Warning, Message = "{File} was readable by other users (mode {Old}); it holds secrets and message bodies, so it is now {New}")]
    public static partial void FileModeTightened(ILogger logger, string file, string old, string @new);

    [LoggerMessage(EventId = 108, Level = LogLevel.Warning, Message = "{File} is readable by other users (mode {Mode}) and could not be made owner-only; it holds secrets and message bodies")]
    public static partial void FileModeNotTightened(ILogger logger, string file, string mode, Exception exception);

    [LoggerMessage(EventId = 109, Level = LogLevel.Error, Message = "Store writes are failing; ingress answers 503 with Retry-After and the node is not ready until a write is kept again")]
    public static partial void StoreWritesFailing(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Store writes are kept again after {Duration}; {Failures} writes failed meanwhile and none of them was acknowledged")]
    public static partial void StoreWritesRecovered(ILogger logger, TimeSpan duration, int failures);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "The store probe's write failed with an error that is not a store fault")]
    public static partial void ProbeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Stopping: a store writer was still waiting on the store after {Timeout}; its writes are abandoned, and none of them was acknowledged")]
    public static partial void WriterAbandoned(ILogger logger, TimeSpan timeout);
}
