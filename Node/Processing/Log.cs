namespace ClusterQueue.Node.Processing;

internal static partial class Log
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "Actor for group {GroupId} started")]
    public static partial void ActorStarted(ILogger logger, string groupId);

    [LoggerMessage(EventId = 301, Level = LogLevel.Debug, Message = "Actor for group {GroupId} retired: nothing pending, nothing in flight, bucket full")]
    public static partial void ActorRetired(ILogger logger, string groupId);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "Leasing messages of group {GroupId} failed; retrying in {Delay}")]
    public static partial void LeaseFailed(ILogger logger, string groupId, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "Message {MessageId} of group {GroupId}: lease extension failed; retrying at the next tick")]
    public static partial void ExtendFailed(ILogger logger, string messageId, string groupId, Exception exception);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Message {MessageId} of group {GroupId}: lease lost while the handler ran; the call was cancelled")]
    public static partial void LeaseLost(ILogger logger, string messageId, string groupId);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "Message {MessageId} of group {GroupId}: recording the outcome failed; the message returns when its lease expires")]
    public static partial void OutcomeFailed(ILogger logger, string messageId, string groupId, Exception exception);

    [LoggerMessage(EventId = 306, Level = LogLevel.Information, Message = "Message {MessageId} of group {GroupId} attempt {Attempt} failed: {Error}; retry at {RetryAt}")]
    public static partial void AttemptFailed(ILogger logger, string messageId, string groupId, int attempt, string error, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 307, Level = LogLevel.Warning, Message = "Message {MessageId} of group {GroupId} dead-lettered after {Attempt} attempts: {Error}")]
    public static partial void DeadLettered(ILogger logger, string messageId, string groupId, int attempt, string error);

    [LoggerMessage(EventId = 308, Level = LogLevel.Information, Message = "Group {GroupId} paused until {Until}: the downstream asked to slow down ({Error})")]
    public static partial void GroupThrottled(ILogger logger, string groupId, DateTimeOffset until, string error);

    [LoggerMessage(EventId = 309, Level = LogLevel.Information, Message = "Recovery found {Count} groups with pending messages")]
    public static partial void Recovered(ILogger logger, int count);

    [LoggerMessage(EventId = 310, Level = LogLevel.Error, Message = "Scanning for groups with pending messages failed; retrying in {Delay}")]
    public static partial void SweepFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 311, Level = LogLevel.Information, Message = "Draining {Actors} actors (up to {Timeout})")]
    public static partial void Draining(ILogger logger, int actors, TimeSpan timeout);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "Drain timed out; cancelling in-flight calls and handing their messages back")]
    public static partial void DrainTimedOut(ILogger logger);

    [LoggerMessage(EventId = 313, Level = LogLevel.Error, Message = "Actor for group {GroupId} failed; it is restarted on the next wake-up")]
    public static partial void ActorFailed(ILogger logger, string groupId, Exception exception);

    [LoggerMessage(EventId = 314, Level = LogLevel.Warning, Message = "Handover of {Shards} shards: calls still in flight after {Timeout} are cancelled and their messages handed back")]
    public static partial void HandoverTimedOut(ILogger logger, int shards, TimeSpan timeout);

    [LoggerMessage(EventId = 315, Level = LogLevel.Warning, Message = "{Shards} shards stopped at once: {Actors} actors stopped and their calls cancelled")]
    public static partial void ShardsAborted(ILogger logger, int shards, int actors);

    [LoggerMessage(EventId = 316, Level = LogLevel.Warning, Message = "Group {GroupId}: its saved state could not be read; its bucket starts empty")]
    public static partial void StateLoadFailed(ILogger logger, string groupId, Exception exception);

    [LoggerMessage(EventId = 317, Level = LogLevel.Warning, Message = "Group {GroupId}: its state could not be saved for its next actor")]
    public static partial void StateSaveFailed(ILogger logger, string groupId, Exception exception);

    [LoggerMessage(EventId = 319, Level = LogLevel.Information, Message = "Draining: every shard of this node is handed over, but its shard region still holds messages for shards with no new home after {Wait}, as when every member stops at once; it is stopped, and those wake-ups are left to the store")]
    public static partial void RegionStoppedHostless(ILogger logger, TimeSpan wait);

    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "Draining: {Moved} of {Shards} shards moved to other members a wave at a time in {Elapsed}; the region hands off the rest")]
    public static partial void ShardsMovedInWaves(ILogger logger, int moved, int shards, TimeSpan elapsed);

    [LoggerMessage(EventId = 318, Level = LogLevel.Debug, Message = "Group {GroupId} stopped for a handoff or drain: its calls finished {CallsMs:0} ms after the stop, its state was stored {StoreMs:0} ms after that")]
    public static partial void HandedOff(ILogger logger, string groupId, double callsMs, double storeMs);
}
