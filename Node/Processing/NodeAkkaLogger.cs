using Akka.Actor;
using Akka.Event;
using Akka.Hosting.Logging;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Akka's log events into the node's log, as Akka.Hosting's logger writes them, with one change. A shard waiting for
/// its lease logs "Failed to get lease" at error level every lease-retry-interval (200 ms) while another member holds
/// the lease: the expected state of every shard of a failover until the dead member's leases expire, hundreds of error
/// lines for one event that the node logs itself (each takeover, event 702). Those lines go out at debug level. A
/// failure with a cause (the database could not be asked) stays an error.
/// </summary>
internal sealed class NodeAkkaLogger : LoggerFactoryLogger
{
    private const string LeaseWait = "Failed to get lease for shard id";

    protected override void Log(LogEvent log, ActorPath path) => base.Log(Downgraded(log), path);

    /// <summary>The event as the node logs it: a lease wait at debug level, anything else as it is.</summary>
    internal static LogEvent Downgraded(LogEvent log) =>
        log is Error { Cause: null } error && error.Message?.ToString()?.Contains(LeaseWait, StringComparison.Ordinal) == true
            ? new Debug(error.LogSource, error.LogClass, error.Message)
            : log;
}
