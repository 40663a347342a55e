using System.Collections.Immutable;
using System.Globalization;
using Akka.Actor;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Processing;

namespace ClusterQueue.Tests.Cluster;

public sealed class RendezvousAllocationTests
{
    private const int Shards = 256;

    [Fact]
    public void WaveOf_IsOneShardIn32_AndNeverBelowEight()
    {
        Assert.Equal(8, RendezvousAllocation.WaveOf(1));
        Assert.Equal(8, RendezvousAllocation.WaveOf(Shards));
        Assert.Equal(128, RendezvousAllocation.WaveOf(4096));
    }

    [Fact]
    public void Rebalance_MovesALeavingMembersShards_AWaveAtATime_LowestFirst()
    {
        var regions = new[] { "a", "b", "c" }.ToDictionary(name => name, name => (IActorRef)new Region(name));
        var allocations = PlacedOver(regions);
        var leaving = Key(regions["c"]);
        var strategy = new RendezvousAllocation(Shards, () => new HashSet<string>(StringComparer.Ordinal) { leaving });
        var held = allocations[regions["c"]].OrderBy(Number).ToList();

        var first = Rebalance(strategy, allocations, []);
        var inFlight = first.Take(3).ToImmutableHashSet();
        var topUp = Rebalance(strategy, allocations, inFlight);
        var full = Rebalance(strategy, allocations, held.Take(RendezvousAllocation.WaveOf(Shards)).ToImmutableHashSet());

        // Nothing but c's shards is misplaced, and a wave takes the lowest of them.
        Assert.True(held.Count > 2 * RendezvousAllocation.WaveOf(Shards), $"c holds {held.Count} shards");
        Assert.Equal(held.Take(8).ToHashSet(), first.ToHashSet());
        Assert.Equal(5, topUp.Count);
        Assert.DoesNotContain(topUp, inFlight.Contains);
        Assert.All(topUp, shard => Assert.Contains(shard, held));
        Assert.Empty(full);
    }

    [Fact]
    public void Rebalance_WithEveryMemberInPlace_MovesNothing()
    {
        var regions = new[] { "a", "b", "c" }.ToDictionary(name => name, name => (IActorRef)new Region(name));
        var strategy = new RendezvousAllocation(Shards);

        Assert.Empty(Rebalance(strategy, PlacedOver(regions), []));
    }

    [Fact]
    public void NextWave_TakesPassedOverMembersShardsFirst_InShardOrder()
    {
        (string, bool)[] misplaced = [("17", false), ("3", true), ("100", true), ("2", false), ("20", true)];

        Assert.Equal(["3"], RendezvousAllocation.NextWave(misplaced, 1));
        Assert.Equal(new HashSet<string> { "3", "20", "100" }, RendezvousAllocation.NextWave(misplaced, 3).ToHashSet());
        Assert.Equal(new HashSet<string> { "3", "20", "100", "2" }, RendezvousAllocation.NextWave(misplaced, 4).ToHashSet());
        Assert.Equal(5, RendezvousAllocation.NextWave(misplaced, 10).Count);
        Assert.Empty(RendezvousAllocation.NextWave(misplaced, 0));
        Assert.Empty(RendezvousAllocation.NextWave(misplaced, -2));
    }

    // Each shard on the region that rendezvous hashing picks among all three, as the coordinator leaves them.
    private static ImmutableDictionary<IActorRef, IImmutableList<string>> PlacedOver(Dictionary<string, IActorRef> regions)
    {
        var keys = regions.Values.Select(Key).ToArray();
        var byKey = regions.Values.ToDictionary(Key);
        return Enumerable.Range(0, Shards)
            .GroupBy(shard => byKey[ShardMap.OwnerOf(shard, keys)!])
            .ToImmutableDictionary(g => g.Key, g => (IImmutableList<string>)g.Select(s => s.ToString(CultureInfo.InvariantCulture)).ToImmutableList());
    }

    private static IImmutableSet<string> Rebalance(RendezvousAllocation strategy, ImmutableDictionary<IActorRef, IImmutableList<string>> allocations, IImmutableSet<string> inProgress) =>
        strategy.Rebalance(allocations, inProgress).GetAwaiter().GetResult();

    // Without a cluster to name a member's node id, the strategy keys a region by its address.
    private static string Key(IActorRef region) => region.Path.Address.ToString();

    private static int Number(string shard) => int.Parse(shard, CultureInfo.InvariantCulture);

    /// <summary>A shard region's reference on a member of its own address; the strategy reads nothing else of it.</summary>
    private sealed class Region(string host) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka.tcp", "clusterqueue", host, 2552)) / "system" / "sharding" / "groups";

        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
