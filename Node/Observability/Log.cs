namespace ClusterQueue.Node.Observability;

internal static partial class Log
{
    public const string Category = "ClusterQueue.Node.Observability";

    [LoggerMessage(EventId = 800, Level = LogLevel.Warning, Message = "Reading the backlog per group for metrics failed; the metrics keep the groups and backlogs read last")]
    public static partial void BacklogReadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 801, Level = LogLevel.Information, Message = "The ClusterQueue meter was rebuilt to free the label values of {Groups} groups no longer shown ({Limit} fit)")]
    public static partial void MeterRebuilt(ILogger logger, int groups, int limit);
}
