using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using ClusterQueue.Node.Cluster;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Where the shard coordinator places each shard: on the member that scores highest for it by rendezvous hashing of
/// the members' node ids (<see cref="ShardMap.OwnerOf"/>), among the members whose regions are up. Every placement is
/// a pure function of the member list, so it is the same whichever member runs the coordinator, and predictable from
/// outside. A member that joins takes only the shards it now scores highest on (about 1/n of them), at the next
/// rebalance; a member that leaves gives up only its own. A member's node id travels as its cluster role
/// <c>node-{id}</c> (<see cref="RoleOf"/>).
/// <para>
/// With the PostgreSQL store, a member that cannot reach the database or is leaving (its row in cluster_seeds lapsed,
/// as <paramref name="lapsedNodes"/> tells) is passed over while others can: it cannot hold a shard's lease, or should
/// not take one, and its shards move to members that can, which take them once its leases are released or expire.
/// </para>
/// <para>
/// Shards move a wave at a time: at most <see cref="WaveOf"/> of them are on their way at once, those of a member passed
/// over first. The coordinator writes two steps per moved shard, one after another (its release and its new home), so a
/// group waits for the steps of every shard ahead of it in the coordinator's queue: with all 57 shards of a leaving
/// member at once, the last of them were placed 0.4–1.1 s after the member began to drain, on a loaded two-core machine.
/// In waves, a group waits only for its own wave's.
/// </para>
/// </summary>
internal sealed class RendezvousAllocation(int shards, Func<IReadOnlySet<string>?>? lapsedNodes = null) : IActorSystemDependentAllocationStrategy
{
    private const string RolePrefix = "node-";

    private readonly int _wave = WaveOf(shards);

    /// <summary>How many shards may be on their way between members at once: one in 32 of them, at least eight.</summary>
    public static int WaveOf(int shards) => Math.Max(8, shards / 32);

    private Akka.Cluster.Cluster? _cluster;

    /// <summary>The role that names a member's node id.</summary>
    public static string RoleOf(string nodeId) => RolePrefix + nodeId;

    /// <summary>The node id a member carries in its role; null for a member without one.</summary>
    public static string? NodeIdOf(Akka.Cluster.Member member) =>
        member.Roles.FirstOrDefault(role => role.StartsWith(RolePrefix, StringComparison.Ordinal))?[RolePrefix.Length..];

    public void Start(ActorSystem system) => _cluster = Akka.Cluster.Cluster.Get(system);

    public Task<IActorRef> AllocateShard(IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
    {
        var regions = Keyed(currentShardAllocations.Keys);
        return Task.FromResult(regions.Count == 0 ? requester : Best(shardId, regions));
    }

    public Task<IImmutableSet<string>> Rebalance(IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress)
    {
        // A member alone (the embedded node) has nowhere to move anything; the coordinator asks four times a second.
        var room = _wave - rebalanceInProgress.Count;
        if (room <= 0 || currentShardAllocations.Count < 2)
        {
            return Task.FromResult<IImmutableSet<string>>(ImmutableHashSet<string>.Empty);
        }

        var regions = Keyed(currentShardAllocations.Keys);
        var misplaced = new List<(string Shard, bool FromPassedOver)>();
        foreach (var (region, held) in currentShardAllocations)
        {
            var passedOver = !regions.ContainsValue(region);
            foreach (var shard in held)
            {
                if (!rebalanceInProgress.Contains(shard) && !Best(shard, regions).Equals(region))
                {
                    misplaced.Add((shard, passedOver));
                }
            }
        }

        return Task.FromResult(NextWave(misplaced, room));
    }

    /// <summary>
    /// The shards to move now, at most <paramref name="room"/> of the <paramref name="misplaced"/> ones: first those of
    /// members passed over (leaving, or cut off from the database), then the rest, each lot in shard order.
    /// </summary>
    internal static IImmutableSet<string> NextWave(IEnumerable<(string Shard, bool FromPassedOver)> misplaced, int room) =>
        misplaced
            .OrderByDescending(m => m.FromPassedOver)
            .ThenBy(m => m.Shard.Length)
            .ThenBy(m => m.Shard, StringComparer.Ordinal)
            .Take(Math.Max(room, 0))
            .Select(m => m.Shard)
            .ToImmutableHashSet(StringComparer.Ordinal);

    private static IActorRef Best(string shardId, IReadOnlyDictionary<string, IActorRef> regions)
    {
        var shard = int.TryParse(shardId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number) ? number : ShardMap.ShardOf(shardId, int.MaxValue);
        return regions[ShardMap.OwnerOf(shard, regions.Keys.ToArray())!];
    }

    /// <summary>
    /// The regions that may hold shards, by their member's node id (its address when the member, or its role, is not
    /// known yet): all but those of members whose rows lapsed, unless that is all of them.
    /// </summary>
    private Dictionary<string, IActorRef> Keyed(IEnumerable<IActorRef> regions)
    {
        var keyed = new Dictionary<string, IActorRef>(StringComparer.Ordinal);
        foreach (var region in regions)
        {
            keyed[KeyOf(region)] = region;
        }

        if (lapsedNodes?.Invoke() is { } lapsed && !keyed.Keys.All(lapsed.Contains))
        {
            foreach (var key in keyed.Keys.Where(lapsed.Contains).ToList())
            {
                keyed.Remove(key);
            }
        }

        return keyed;
    }

    private string KeyOf(IActorRef region)
    {
        var address = region.Path.Address;
        if (_cluster is { } cluster)
        {
            if (address.HasLocalScope)
            {
                address = cluster.SelfAddress;
            }

            foreach (var member in cluster.State.Members)
            {
                if (member.Address.Equals(address))
                {
                    if (NodeIdOf(member) is { } nodeId)
                    {
                        return nodeId;
                    }
                }
            }
        }

        return address.ToString();
    }
}
