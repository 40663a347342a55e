namespace ClusterQueue.Node.Cluster;

internal static partial class Log
{
    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Node {NodeId} joined the cluster through the database: {Seeds} live members to join")]
    public static partial void JoiningThroughDatabase(ILogger logger, string nodeId, int seeds);

    [LoggerMessage(EventId = 701, Level = LogLevel.Information, Message = "Shard {Shard} acquired at epoch {Epoch}")]
    public static partial void ShardAcquired(ILogger logger, int shard, long epoch);

    [LoggerMessage(EventId = 702, Level = LogLevel.Warning, Message = "Shard {Shard} taken over from an owner whose lease had expired (quiet for at least {Quiet})")]
    public static partial void ShardTakenOver(ILogger logger, int shard, TimeSpan quiet);

    [LoggerMessage(EventId = 703, Level = LogLevel.Information, Message = "Shard {Shard} handed over")]
    public static partial void ShardHandedOver(ILogger logger, int shard);

    [LoggerMessage(EventId = 705, Level = LogLevel.Warning, Message = "Shard {Shard} lost its lease at epoch {Epoch}; its actors are stopped")]
    public static partial void ShardLost(ILogger logger, int shard, long epoch);

    [LoggerMessage(EventId = 707, Level = LogLevel.Warning, Message = "Joining the cluster through the database failed; retrying in {Delay}")]
    public static partial void JoinFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 708, Level = LogLevel.Warning, Message = "No live member answered within {Timeout}; looking again")]
    public static partial void JoinTimedOut(ILogger logger, TimeSpan timeout);

    [LoggerMessage(EventId = 709, Level = LogLevel.Warning, Message = "Renewing this member's address in the database failed")]
    public static partial void SeedRenewalFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 710, Level = LogLevel.Critical, Message = "This node's configuration conflicts with the cluster's")]
    public static partial void ConfigurationConflict(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 712, Level = LogLevel.Warning, Message = "Cluster member {Address} is cut off from the database (its row stayed lapsed for {Lapsed} while this node renewed its own): downing it, so that its shards move")]
    public static partial void DowningCutOffMember(ILogger logger, string address, TimeSpan lapsed);

    [LoggerMessage(EventId = 713, Level = LogLevel.Warning, Message = "Cluster member {Address} was downed but has not gone: quarantining it, so that it is removed")]
    public static partial void QuarantiningCutOffMember(ILogger logger, string address);

    [LoggerMessage(EventId = 711, Level = LogLevel.Warning, Message = "Listening for cluster notifications failed; reconnecting in {Delay}")]
    public static partial void ListenFailed(ILogger logger, TimeSpan delay, Exception exception);
}
