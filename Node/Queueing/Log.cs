namespace ClusterQueue.Node.Queueing;

internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "Purging expired dedup keys and delivered statuses failed; retrying in {Delay}")]
    public static partial void PurgeFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Redrove {Count} dead letters of group {GroupId}")]
    public static partial void Redriven(ILogger logger, int count, string groupId);
}
