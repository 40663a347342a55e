using System.Collections.Concurrent;
using System.Globalization;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Which shards this node holds right now, with the fencing epoch of each: the shard leases (PostgreSQL rows, see
/// <see cref="Leases.PostgresLease"/>) that Akka's shards acquire before they start any group actor, and give up when
/// they move away or lose them. The actors and the queue read it; the lease's events write it
/// (<see cref="ShardLeaseEvents"/>). A node of the embedded store is not clustered and owns every group.
/// </summary>
public sealed class ShardOwnership
{
    /// <summary>How each shard lease is named: Akka.Cluster.Sharding's <c>{system}-shard-{type}-{shard}</c>.</summary>
    public const string LeasePrefix = Processing.ActorsSetup.SystemName + "-shard-" + Processing.GroupShards.TypeName + "-";

    private readonly ConcurrentDictionary<int, ShardGrant> _held = new();

    // What the actors of shards on their way out left, saved with each shard's release for its next owner.
    private readonly ConcurrentDictionary<int, ConcurrentDictionary<string, SavedBucket>> _left = new();

    private ShardOwnership(bool clustered, int shards)
    {
        IsClustered = clustered;
        Shards = shards;
    }

    /// <summary>One node on its own store: owns everything, fences nothing.</summary>
    public static ShardOwnership Standalone() => new(false, 1);

    public static ShardOwnership Clustered(int shards) => new(true, shards);

    public bool IsClustered { get; }

    public int Shards { get; }

    public int ShardOf(string groupId) => IsClustered ? ShardMap.ShardOf(groupId, Shards) : 0;

    public bool Owns(string groupId) => !IsClustered || _held.ContainsKey(ShardOf(groupId));

    /// <summary>The fence an owner-only write must check; null when not clustered or the shard is not held.</summary>
    public ShardFence? FenceFor(string groupId) =>
        IsClustered && _held.TryGetValue(ShardOf(groupId), out var grant) ? new ShardFence(LeasePrefix + grant.Shard.ToString(CultureInfo.InvariantCulture), grant.Owner, grant.Epoch) : null;

    public IReadOnlyCollection<int> Held => [.. _held.Keys];

    public bool TryGetGrant(int shard, out ShardGrant grant) => _held.TryGetValue(shard, out grant!);

    /// <summary>
    /// The tokens a new actor of the group starts with: what the last owner left (plus what accrued since), or, after a
    /// failover, only what accrued since the failed owner went quiet; null (a full bucket) when neither applies.
    /// </summary>
    public double? StartTokens(string groupId, double ratePerSecond, int burst, DateTimeOffset now)
    {
        if (!IsClustered || !_held.TryGetValue(ShardOf(groupId), out var grant))
        {
            return null;
        }

        if (grant.Buckets.TryGetValue(groupId, out var saved))
        {
            return saved.TokensAt(ratePerSecond, burst, now);
        }

        return grant.QuietSince is { } quiet ? new SavedBucket(0, quiet).TokensAt(ratePerSecond, burst, now) : null;
    }

    /// <summary>Called by an actor whose shard moves away, as it stops: its tokens go to the shard's next owner.</summary>
    public void Left(string groupId, double tokens, DateTimeOffset at)
    {
        if (IsClustered)
        {
            _left.GetOrAdd(ShardOf(groupId), _ => new(StringComparer.Ordinal))[groupId] = new SavedBucket(tokens, at);
        }
    }

    /// <summary>The shard of a lease name, when it is one of the group shards' leases.</summary>
    public static bool TryParseLease(string leaseName, out int shard)
    {
        shard = -1;
        return leaseName.StartsWith(LeasePrefix, StringComparison.Ordinal)
               && int.TryParse(leaseName.AsSpan(LeasePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out shard);
    }

    internal void Grant(ShardGrant grant)
    {
        _left.TryRemove(grant.Shard, out _);
        _held[grant.Shard] = grant;
    }

    internal bool Revoke(int shard, long epoch) =>
        _held.TryGetValue(shard, out var grant) && grant.Epoch == epoch && _held.TryRemove(new KeyValuePair<int, ShardGrant>(shard, grant));

    /// <summary>Takes what the shard's actors left as they stopped.</summary>
    internal IReadOnlyDictionary<string, SavedBucket> TakeLeft(int shard) =>
        _left.TryRemove(shard, out var left) ? left : new Dictionary<string, SavedBucket>();
}

/// <summary>
/// A shard this node acquired: its lease owner and epoch, when the previous owner went quiet (a failover: it stopped
/// before its lease expired) and the buckets a previous owner saved at a handover.
/// </summary>
public sealed record ShardGrant(int Shard, string Owner, long Epoch, DateTimeOffset? QuietSince, IReadOnlyDictionary<string, SavedBucket> Buckets);

/// <summary>A bucket's tokens as they were at <see cref="At"/>.</summary>
public readonly record struct SavedBucket(double Tokens, DateTimeOffset At)
{
    /// <summary>What the bucket holds at <paramref name="now"/>, refilled at the rate since then (never less), capped at the burst.</summary>
    public double TokensAt(double ratePerSecond, int burst, DateTimeOffset now) =>
        Math.Min(burst, Tokens + (ratePerSecond * Math.Max(0, (now - At).TotalSeconds)));
}

/// <summary>What an owner-only write checks in the database: the shard's lease is still this owner's at this epoch.</summary>
public readonly record struct ShardFence(string LeaseName, string Owner, long Epoch);
