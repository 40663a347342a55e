using System.Collections.Concurrent;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Which shards this node holds right now, with the fencing epoch of each. The coordinator grants and revokes; the
/// dispatcher and the queue read. A node of the embedded store is not clustered and owns every group.
/// </summary>
public sealed class ShardOwnership
{
    private readonly ConcurrentDictionary<int, ShardGrant> _held = new();

    private ShardOwnership(bool clustered, int shards, Guid session)
    {
        IsClustered = clustered;
        Shards = shards;
        Session = session;
    }

    /// <summary>One node on its own store: owns everything, fences nothing.</summary>
    public static ShardOwnership Standalone() => new(false, 1, Guid.Empty);

    public static ShardOwnership Clustered(int shards) => new(true, shards, Guid.NewGuid());

    public bool IsClustered { get; }

    public int Shards { get; }

    /// <summary>This process's membership: a restarted node with the same id is a new session and holds nothing of the old one.</summary>
    public Guid Session { get; }

    public int ShardOf(string groupId) => IsClustered ? ShardMap.ShardOf(groupId, Shards) : 0;

    public bool Owns(string groupId) => !IsClustered || _held.ContainsKey(ShardOf(groupId));

    /// <summary>The fence an owner-only write must check; null when not clustered or the shard is not held.</summary>
    public ShardFence? FenceFor(string groupId) =>
        IsClustered && _held.TryGetValue(ShardOf(groupId), out var grant) ? new ShardFence(grant.Shard, grant.Epoch, Session) : null;

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
            return Math.Min(burst, saved.Tokens + ratePerSecond * Math.Max(0, (now - saved.At).TotalSeconds));
        }

        return grant.QuietSince is { } quiet ? Math.Min(burst, ratePerSecond * Math.Max(0, (now - quiet).TotalSeconds)) : null;
    }

    internal void Grant(ShardGrant grant) => _held[grant.Shard] = grant;

    internal bool Revoke(int shard) => _held.TryRemove(shard, out _);
}

/// <summary>
/// A shard this node acquired: its epoch, when the previous owner went quiet (a failover: it stopped before its lease
/// expired) and the buckets a previous owner saved at a handover.
/// </summary>
public sealed record ShardGrant(int Shard, long Epoch, DateTimeOffset? QuietSince, IReadOnlyDictionary<string, SavedBucket> Buckets);

public readonly record struct SavedBucket(double Tokens, DateTimeOffset At);

/// <summary>What an owner-only write checks in the database: the shard is still held by this session at this epoch.</summary>
public readonly record struct ShardFence(int Shard, long Epoch, Guid Session);
