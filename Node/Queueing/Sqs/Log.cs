namespace ClusterQueue.Node.Queueing.Sqs;

internal static partial class Log
{
    [LoggerMessage(EventId = 251, Level = LogLevel.Warning, Message = "Could not check the SQS queue of group {GroupId} at start; it is created on demand")]
    public static partial void RecoverFailed(ILogger logger, string groupId, Exception exception);

    [LoggerMessage(EventId = 252, Level = LogLevel.Warning, Message = "SQS did not take dead letter {MessageId} of group {GroupId} back; it stays a dead letter")]
    public static partial void RedriveSendFailed(ILogger logger, string messageId, string groupId, Exception exception);

    [LoggerMessage(EventId = 253, Level = LogLevel.Warning, Message = "SQS queue {QueueName} of group {GroupId} was missing; created it again")]
    public static partial void QueueRecreated(ILogger logger, string queueName, string groupId);
}
