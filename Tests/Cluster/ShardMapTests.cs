using ClusterQueue.Node.Cluster;

namespace ClusterQueue.Tests.Cluster;

public sealed class ShardMapTests
{
    private const int Shards = 256;

    private static readonly string[] Three = ["node-a", "node-b", "node-c"];

    [Fact]
    public void ShardOf_IsWithinRangeAndTheSameOnEveryCall()
    {
        foreach (var shards in new[] { 1, 2, 7, Shards, 65_536 })
        {
            for (var i = 0; i < 1_000; i++)
            {
                var id = $"g-{i}";

                var first = ShardMap.ShardOf(id, shards);

                Assert.InRange(first, 0, shards - 1);
                Assert.Equal(first, ShardMap.ShardOf(id, shards));
                Assert.Equal(first, ShardMap.ShardOf(new string(id.AsSpan()), shards));
            }
        }
    }

    [Fact]
    public void ShardOf_TenThousandGroups_ReachEveryShardAndOverloadNone()
    {
        const int Groups = 10_000;
        var counts = new int[Shards];
        for (var i = 0; i < Groups; i++)
        {
            counts[ShardMap.ShardOf($"g-{i}", Shards)]++;
        }

        var mean = Groups / (double)Shards;
        for (var shard = 0; shard < Shards; shard++)
        {
            Assert.True(counts[shard] >= 1, $"shard {shard} got no group");
            Assert.True(counts[shard] <= 3 * mean, $"shard {shard} got {counts[shard]} groups, more than 3 × the mean {mean:0.0}");
        }
    }

    [Fact]
    public void OwnerOf_NoLiveNodes_IsNull()
    {
        for (var shard = 0; shard < Shards; shard++)
        {
            Assert.Null(ShardMap.OwnerOf(shard, []));
        }

        Assert.Empty(ShardMap.ShardsOf("node-a", [], Shards));
    }

    [Fact]
    public void OwnerOf_SingleNode_OwnsEveryShard()
    {
        for (var shard = 0; shard < Shards; shard++)
        {
            Assert.Equal("node-a", ShardMap.OwnerOf(shard, ["node-a"]));
        }

        Assert.Equal(Shards, ShardMap.ShardsOf("node-a", ["node-a"], Shards).Count);
    }

    [Fact]
    public void OwnerOf_IsTheSameWhateverTheOrderOfTheNodeList()
    {
        string[] nodes = ["node-a", "node-b", "node-c", "node-d", "node-e"];
        List<string[]> orders =
        [
            nodes,
            [.. Enumerable.Reverse(nodes)],
            ["node-c", "node-e", "node-a", "node-d", "node-b"],
            ["node-b", "node-d", "node-e", "node-c", "node-a"],
        ];
        var random = new Random(42);
        for (var i = 0; i < 20; i++)
        {
            orders.Add([.. nodes.OrderBy(_ => random.Next())]);
        }

        for (var shard = 0; shard < Shards; shard++)
        {
            var expected = ShardMap.OwnerOf(shard, nodes);
            Assert.NotNull(expected);
            Assert.Contains(expected, nodes);
            foreach (var order in orders)
            {
                Assert.Equal(expected, ShardMap.OwnerOf(shard, order));
                Assert.Equal(expected, ShardMap.OwnerOf(shard, new HashSet<string>(order)));
            }
        }
    }

    [Fact]
    public void ShardsOf_ThreeNodes_EachOwnsARoughlyEqualShare()
    {
        foreach (var node in Three)
        {
            var owned = ShardMap.ShardsOf(node, Three, Shards).Count;

            Assert.InRange(owned, 0.20 * Shards, 0.47 * Shards);
        }
    }

    [Fact]
    public void ShardsOf_OverAllNodes_PartitionsTheShards()
    {
        string[] nodes = ["node-a", "node-b", "node-c", "node-d", "node-e"];
        var sets = nodes.Select(node => ShardMap.ShardsOf(node, nodes, Shards)).ToList();

        for (var i = 0; i < sets.Count; i++)
        {
            for (var j = i + 1; j < sets.Count; j++)
            {
                Assert.False(sets[i].Overlaps(sets[j]), $"{nodes[i]} and {nodes[j]} both own a shard");
            }
        }

        var union = sets.SelectMany(set => set).ToHashSet();
        Assert.Equal(Enumerable.Range(0, Shards), union.Order());
        Assert.Equal(Shards, sets.Sum(set => set.Count));
    }

    [Fact]
    public void Join_MovesOnlyShardsToTheNewNode()
    {
        string[] four = [.. Three, "node-d"];
        var moved = 0;

        for (var shard = 0; shard < Shards; shard++)
        {
            var before = ShardMap.OwnerOf(shard, Three);
            var after = ShardMap.OwnerOf(shard, four);
            if (before != after)
            {
                moved++;
                Assert.Equal("node-d", after);
            }
        }

        var joined = ShardMap.ShardsOf("node-d", four, Shards).Count;
        Assert.Equal(moved, joined);
        Assert.InRange(joined, 0.15 * Shards, 0.35 * Shards);
    }

    [Fact]
    public void Leave_MovesOnlyTheLeaversShards_SpreadOverTheOthers()
    {
        string[] two = ["node-a", "node-b"];
        var leaverShards = ShardMap.ShardsOf("node-c", Three, Shards);
        Assert.NotEmpty(leaverShards);
        var inherited = new Dictionary<string, int> { ["node-a"] = 0, ["node-b"] = 0 };

        for (var shard = 0; shard < Shards; shard++)
        {
            var before = ShardMap.OwnerOf(shard, Three);
            var after = ShardMap.OwnerOf(shard, two);
            Assert.NotNull(after);
            if (before == "node-c")
            {
                Assert.Contains(after, two);
                inherited[after]++;
            }
            else
            {
                Assert.Equal(before, after);
            }
        }

        Assert.True(inherited["node-a"] > 0, "node-a inherited none of node-c's shards");
        Assert.True(inherited["node-b"] > 0, "node-b inherited none of node-c's shards");
        Assert.Equal(leaverShards.Count, inherited.Values.Sum());
    }
}
