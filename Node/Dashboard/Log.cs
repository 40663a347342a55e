namespace ClusterQueue.Node.Dashboard;

internal static partial class Log
{
    [LoggerMessage(EventId = 1100, Level = LogLevel.Warning, Message = "Sampling the groups for the dashboard's charts failed; the charts get a gap")]
    public static partial void SampleFailed(ILogger logger, Exception exception);
}
