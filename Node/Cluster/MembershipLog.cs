namespace ClusterQueue.Node.Cluster;

/// <summary>Akka.Cluster membership (events 750-759).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 750, Level = LogLevel.Information, Message = "This node is an Up cluster member at {Address}")]
    public static partial void MemberSelfUp(ILogger logger, string address);

    [LoggerMessage(EventId = 751, Level = LogLevel.Information, Message = "Cluster member {Address} joined (Up); {Members} members Up")]
    public static partial void MemberUp(ILogger logger, string address, int members);

    [LoggerMessage(EventId = 752, Level = LogLevel.Information, Message = "Cluster member {Address} is leaving")]
    public static partial void MemberLeaving(ILogger logger, string address);

    [LoggerMessage(EventId = 753, Level = LogLevel.Warning, Message = "Cluster member {Address} was downed")]
    public static partial void MemberDowned(ILogger logger, string address);

    [LoggerMessage(EventId = 754, Level = LogLevel.Information, Message = "Cluster member {Address} was removed (it was {Status}); {Members} members Up")]
    public static partial void MemberRemoved(ILogger logger, string address, string status, int members);

    [LoggerMessage(EventId = 755, Level = LogLevel.Warning, Message = "Cluster member {Address} is unreachable")]
    public static partial void MemberUnreachable(ILogger logger, string address);

    [LoggerMessage(EventId = 756, Level = LogLevel.Information, Message = "Cluster member {Address} is reachable again")]
    public static partial void MemberReachable(ILogger logger, string address);

    [LoggerMessage(EventId = 757, Level = LogLevel.Information, Message = "This node was the cluster's only member; it stops without a leaving round")]
    public static partial void LeftAlone(ILogger logger);

    [LoggerMessage(EventId = 758, Level = LogLevel.Error, Message = "This node is no longer a cluster member (downed); it stops so that a fresh process can join")]
    public static partial void RemovedWhileRunning(ILogger logger);
}
