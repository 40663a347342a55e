using ClusterQueue.Node.Cluster.Leases;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Turns the shard leases' events into this node's <see cref="ShardOwnership"/>: an acquired shard is granted (with the
/// buckets its previous owner saved, or the time its failed owner went quiet) before its shard starts any actor; a
/// shard being released saves what its actors left for the next owner before the row is freed; a lost one is revoked
/// at once. Leases that are not a group shard's (the split brain resolver's) pass through.
/// </summary>
public sealed class ShardLeaseEvents(ShardOwnership ownership, ClusterStore store, TimeProvider time, ILogger<ShardLeaseEvents> logger) : ILeaseListener
{
    public async Task AcquiredAsync(LeaseTenure tenure, TimeSpan? quietFor, CancellationToken cancellationToken)
    {
        if (!ShardOwnership.TryParseLease(tenure.Name, out var shard))
        {
            return;
        }

        var saved = await store.TakeBucketsAsync(shard, cancellationToken);
        var now = time.GetUtcNow();
        var buckets = saved.ToDictionary(b => b.GroupId, b => new SavedBucket(b.Tokens, now - b.Age), StringComparer.Ordinal);
        ownership.Grant(new ShardGrant(shard, tenure.Owner, tenure.Epoch, now - quietFor, buckets));
        if (quietFor is { } quiet)
        {
            Log.ShardTakenOver(logger, shard, quiet);
        }
        else
        {
            Log.ShardAcquired(logger, shard, tenure.Epoch, buckets.Count);
        }
    }

    public async Task ReleasingAsync(LeaseTenure tenure, CancellationToken cancellationToken)
    {
        if (!ShardOwnership.TryParseLease(tenure.Name, out var shard))
        {
            return;
        }

        // The shard's actors have all stopped (Akka releases a shard's lease after them), so this is everything they left.
        ownership.Revoke(shard, tenure.Epoch);
        var left = ownership.TakeLeft(shard);
        await store.SaveBucketsAsync(shard, [.. left.Select(b => (b.Key, b.Value.Tokens))], cancellationToken);
        Log.ShardHandedOver(logger, shard, left.Count);
    }

    public void Ended(LeaseTenure tenure)
    {
        if (ShardOwnership.TryParseLease(tenure.Name, out var shard) && ownership.Revoke(shard, tenure.Epoch))
        {
            Log.ShardLost(logger, shard, tenure.Epoch);
        }
    }
}
