namespace ClusterQueue.Node.Cluster.Leases;

internal static partial class Log
{
    [LoggerMessage(EventId = 720, Level = LogLevel.Debug, Message = "Lease {Lease} acquired by {Owner} at epoch {Epoch}")]
    public static partial void Acquired(ILogger logger, string lease, string owner, long epoch);

    [LoggerMessage(EventId = 721, Level = LogLevel.Debug, Message = "Lease {Lease} released by {Owner}")]
    public static partial void Released(ILogger logger, string lease, string owner);

    [LoggerMessage(EventId = 722, Level = LogLevel.Warning, Message = "Renewing lease {Lease} failed; retrying in {Delay}")]
    public static partial void RenewalFailed(ILogger logger, string lease, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 723, Level = LogLevel.Warning, Message = "Lease {Lease} lost by {Owner} at epoch {Epoch}: {Reason}")]
    public static partial void Lost(ILogger logger, string lease, string owner, long epoch, string reason);

    [LoggerMessage(EventId = 724, Level = LogLevel.Error, Message = "The lost callback of lease {Lease} failed")]
    public static partial void LostCallbackFailed(ILogger logger, string lease, Exception exception);

    [LoggerMessage(EventId = 725, Level = LogLevel.Warning, Message = "Lease {Lease}: its listener failed on the release; the lease is released all the same")]
    public static partial void ListenerFailed(ILogger logger, string lease, Exception exception);

    [LoggerMessage(EventId = 726, Level = LogLevel.Error, Message = "Lease {Lease}: freeing its row in the background failed; it expires after the TTL")]
    public static partial void BackgroundReleaseFailed(ILogger logger, string lease, Exception exception);
}
