namespace ClusterQueue.Node.Queueing.Sqs;

internal static partial class Log
{
    [LoggerMessage(EventId = 250, Level = LogLevel.Warning, Message = "SQS {Action} failed with {ErrorCode} (attempt {Attempt} of {MaxAttempts}); retrying in {Delay}")]
    public static partial void Retrying(ILogger logger, string action, string errorCode, int attempt, int maxAttempts, TimeSpan delay);
}
