using System.Collections.Concurrent;
using System.Globalization;
using ClusterQueue.Node.Processing;

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

    // A shard held, and the source its tenure's calls are linked to: cancelled the moment the hold ends.
    private readonly ConcurrentDictionary<int, Tenure> _held = new();

    private static readonly CancellationToken NotHeld = new(canceled: true);

    // Groups, by shard, known to have no saved state while this node holds the shard: their next actor here starts
    // without asking the store. Only the shard's holder writes its groups' states, so this holds until the shard is
    // granted anew (another node may have held it in between).
    private readonly ConcurrentDictionary<int, ConcurrentDictionary<string, byte>> _nothingSaved = new();

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
        TryGetGrantOf(groupId, out var grant) ? new ShardFence(LeasePrefix + grant.Shard.ToString(CultureInfo.InvariantCulture), grant.Owner, grant.Epoch) : null;

    public IReadOnlyCollection<int> Held => [.. _held.Keys];

    public bool TryGetGrant(int shard, out ShardGrant grant)
    {
        var held = _held.TryGetValue(shard, out var tenure);
        grant = tenure?.Grant!;
        return held;
    }

    /// <summary>
    /// Cancelled the moment this node's hold on the group's shard ends: handed over, lost (the lease's watchdog gave it
    /// up) or replaced by a new epoch. A group actor's calls are linked to it, so a shard given up by the watchdog stops
    /// its calls within that callback, not after Akka's shard has heard of the loss and stopped its actors: a process
    /// that stalls in between must not keep calling past the lease's safety margin. Never cancelled when not clustered;
    /// already cancelled when the shard is not held.
    /// </summary>
    public CancellationToken TenureOf(string groupId) =>
        !IsClustered ? CancellationToken.None
        : _held.TryGetValue(ShardOf(groupId), out var tenure) ? tenure.Ended.Token
        : NotHeld;

    private bool TryGetGrantOf(string groupId, out ShardGrant grant)
    {
        grant = null!;
        return IsClustered && TryGetGrant(ShardOf(groupId), out grant);
    }

    /// <summary>
    /// The tokens a new actor of the group starts with when no saved state applies: after a failover only what accrued
    /// since the failed owner went quiet; otherwise null (a full bucket).
    /// </summary>
    public double? StartTokens(string groupId, double ratePerSecond, int burst, DateTimeOffset now) =>
        TryGetGrantOf(groupId, out var grant) && grant.QuietSince is { } quiet
            ? new SavedGroupState(0, quiet, null, null, null).TokensAt(ratePerSecond, burst, now)
            : null;

    /// <summary>
    /// Whether a group's saved state can be trusted as its latest: saved under the shard's current tenure or one that
    /// ended in a handover since the lease was last taken from a failed owner. State saved before that failure may be
    /// older than what the failed owner did afterwards. A node that is not clustered trusts what it saved.
    /// </summary>
    public bool Trusts(string groupId, SavedGroupState saved)
    {
        if (!IsClustered)
        {
            return true;
        }

        return TryGetGrantOf(groupId, out var grant)
               && saved.Epoch is { } epoch
               && epoch >= grant.TakenOverAt
               && epoch <= grant.Epoch;
    }

    /// <summary>The epoch the group's state is saved under: its shard's lease epoch, null when not clustered.</summary>
    public long? EpochOf(string groupId) => TryGetGrantOf(groupId, out var grant) ? grant.Epoch : null;

    /// <summary>True when the group is known to have no saved state, so its next actor need not ask the store.</summary>
    public bool NothingSaved(string groupId) =>
        _nothingSaved.TryGetValue(ShardOf(groupId), out var groups) && groups.ContainsKey(groupId);

    /// <summary>Records whether the group has saved state now, as its actor found or left it.</summary>
    public void SetNothingSaved(string groupId, bool nothingSaved)
    {
        var shard = ShardOf(groupId);
        if (nothingSaved)
        {
            if (Owns(groupId))
            {
                _nothingSaved.GetOrAdd(shard, _ => new(StringComparer.Ordinal))[groupId] = 0;
            }
        }
        else if (_nothingSaved.TryGetValue(shard, out var groups))
        {
            groups.TryRemove(groupId, out _);
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
        _nothingSaved.TryRemove(grant.Shard, out _);
        Tenure? ended = null;
        _held.AddOrUpdate(
            grant.Shard,
            _ => new Tenure(grant, new CancellationTokenSource()),
            (_, current) =>
            {
                ended = null;

                // The same tenure acquired again keeps its calls; a new epoch means the old one ended in between.
                if (current.Grant.Epoch == grant.Epoch && current.Grant.Owner == grant.Owner)
                {
                    return current with { Grant = grant };
                }

                ended = current;
                return new Tenure(grant, new CancellationTokenSource());
            });
        ended?.Ended.Cancel();
    }

    internal bool Revoke(int shard, long epoch)
    {
        if (!_held.TryGetValue(shard, out var tenure) || tenure.Grant.Epoch != epoch || !_held.TryRemove(new KeyValuePair<int, Tenure>(shard, tenure)))
        {
            return false;
        }

        _nothingSaved.TryRemove(shard, out _);
        tenure.Ended.Cancel();
        return true;
    }

    private sealed record Tenure(ShardGrant Grant, CancellationTokenSource Ended);
}

/// <summary>
/// A shard this node acquired: its lease owner and epoch, when the previous owner went quiet (a failover: it stopped
/// before its lease expired), and the epoch at which the lease was last taken from a failed owner.
/// </summary>
public sealed record ShardGrant(int Shard, string Owner, long Epoch, DateTimeOffset? QuietSince, long TakenOverAt = 0);

/// <summary>What an owner-only write checks in the database: the shard's lease is still this owner's at this epoch.</summary>
public readonly record struct ShardFence(string LeaseName, string Owner, long Epoch);
