namespace ClusterQueue.Node.Cluster;

internal static partial class Log
{
    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Node {NodeId} joined a cluster of {Members} live nodes holding {Shards} shards")]
    public static partial void Joined(ILogger logger, string nodeId, int members, int shards);

    [LoggerMessage(EventId = 701, Level = LogLevel.Information, Message = "Acquired {Count} shards; holding {Held}")]
    public static partial void Acquired(ILogger logger, int count, int held);

    [LoggerMessage(EventId = 702, Level = LogLevel.Warning, Message = "Took {Shards} shards over from an owner whose lease had expired (quiet for at least {Quiet})")]
    public static partial void TookOver(ILogger logger, int shards, TimeSpan quiet);

    [LoggerMessage(EventId = 703, Level = LogLevel.Information, Message = "Handed {Released} of {Shards} shards over with {Buckets} saved buckets")]
    public static partial void HandedOver(ILogger logger, int released, int shards, int buckets);

    [LoggerMessage(EventId = 704, Level = LogLevel.Error, Message = "Handover of {Shards} shards failed; their leases will expire instead")]
    public static partial void HandoverFailed(ILogger logger, int shards, Exception exception);

    [LoggerMessage(EventId = 705, Level = LogLevel.Warning, Message = "Lost the leases on {Shards} shards; their actors are stopped")]
    public static partial void Lost(ILogger logger, int shards);

    [LoggerMessage(EventId = 706, Level = LogLevel.Error, Message = "No lease renewal for too long: stopping all {Shards} shards before their leases can expire")]
    public static partial void WatchdogFired(ILogger logger, int shards);

    [LoggerMessage(EventId = 707, Level = LogLevel.Warning, Message = "Cluster round failed; retrying in {Delay}")]
    public static partial void RoundFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 708, Level = LogLevel.Information, Message = "Node {NodeId} left the cluster")]
    public static partial void Left(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 709, Level = LogLevel.Error, Message = "Leaving the cluster failed; the leases will expire instead")]
    public static partial void LeaveFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 710, Level = LogLevel.Critical, Message = "This node's configuration conflicts with the cluster's")]
    public static partial void ConfigurationConflict(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 711, Level = LogLevel.Warning, Message = "Listening for cluster notifications failed; reconnecting in {Delay}")]
    public static partial void ListenFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 712, Level = LogLevel.Warning, Message = "Passing wake-ups to other nodes failed")]
    public static partial void WakeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 713, Level = LogLevel.Warning, Message = "Took back {Shards} shards whose leases outlived an outage; their groups start with empty buckets")]
    public static partial void Readopted(ILogger logger, int shards);
}
