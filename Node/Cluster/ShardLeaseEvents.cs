using ClusterQueue.Node.Cluster.Leases;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Turns the shard leases' events into this node's <see cref="ShardOwnership"/>: an acquired shard is granted (with the
/// time its failed owner went quiet, and the epoch of the lease's last takeover, which say what the groups' saved
/// states are worth) before its shard starts any actor; a released or lost one is revoked. Leases that are not a group
/// shard's (the split brain resolver's) pass through.
/// </summary>
public sealed class ShardLeaseEvents(ShardOwnership ownership, TimeProvider time, ILogger<ShardLeaseEvents> logger) : ILeaseListener
{
    public Task AcquiredAsync(LeaseTenure tenure, TimeSpan? quietFor, long takenOverAt, CancellationToken cancellationToken)
    {
        if (!ShardOwnership.TryParseLease(tenure.Name, out var shard))
        {
            return Task.CompletedTask;
        }

        var now = time.GetUtcNow();
        ownership.Grant(new ShardGrant(shard, tenure.Owner, tenure.Epoch, now - quietFor, takenOverAt));
        if (quietFor is { } quiet)
        {
            Log.ShardTakenOver(logger, shard, quiet);
        }
        else
        {
            Log.ShardAcquired(logger, shard, tenure.Epoch);
        }

        return Task.CompletedTask;
    }

    public Task ReleasingAsync(LeaseTenure tenure, CancellationToken cancellationToken)
    {
        // The shard's actors have all stopped (Akka releases a shard's lease after them), and saved what they leave.
        if (ShardOwnership.TryParseLease(tenure.Name, out var shard) && ownership.Revoke(shard, tenure.Epoch))
        {
            Log.ShardHandedOver(logger, shard);
        }

        return Task.CompletedTask;
    }

    public void Ended(LeaseTenure tenure)
    {
        if (ShardOwnership.TryParseLease(tenure.Name, out var shard) && ownership.Revoke(shard, tenure.Epoch))
        {
            Log.ShardLost(logger, shard, tenure.Epoch);
        }
    }
}
