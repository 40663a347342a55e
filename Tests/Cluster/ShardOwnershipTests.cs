using ClusterQueue.Node.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Cluster;

public sealed class ShardOwnershipTests
{
    private const int Shards = 256;
    private const string Group = "orders";
    private const string Owner = "clusterqueue@127.0.0.1:4053";

    private static readonly IReadOnlyDictionary<string, SavedBucket> NoBuckets = new Dictionary<string, SavedBucket>();

    [Fact]
    public void Standalone_OwnsEveryGroupAndFencesNothing()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Standalone();

        Assert.False(ownership.IsClustered);
        foreach (var group in new[] { Group, "payments", "g-1", "g-2", "" })
        {
            Assert.True(ownership.Owns(group), group);
            Assert.Null(ownership.FenceFor(group));
            Assert.Null(ownership.StartTokens(group, ratePerSecond: 2, burst: 10, clock.GetUtcNow()));
        }
    }

    [Fact]
    public void Clustered_BeforeAnyGrant_OwnsNothing()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Clustered(Shards);

        Assert.True(ownership.IsClustered);
        Assert.Equal(Shards, ownership.Shards);
        Assert.Empty(ownership.Held);
        for (var i = 0; i < 100; i++)
        {
            var group = $"g-{i}";
            Assert.False(ownership.Owns(group), group);
            Assert.Null(ownership.FenceFor(group));
            Assert.Null(ownership.StartTokens(group, ratePerSecond: 2, burst: 10, clock.GetUtcNow()));
        }
    }

    [Fact]
    public void ShardOf_Clustered_IsTheShardMapsShard()
    {
        var ownership = ShardOwnership.Clustered(Shards);

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(ShardMap.ShardOf($"g-{i}", Shards), ownership.ShardOf($"g-{i}"));
        }
    }

    [Fact]
    public void Grant_OwnsTheShardsGroupsWithItsFence_AndNoOtherShard()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        var otherGroup = GroupInAnotherShard(shard);

        ownership.Grant(new ShardGrant(shard, Owner, 7, null, NoBuckets));

        Assert.True(ownership.Owns(Group));
        Assert.Equal(new ShardFence(ShardOwnership.LeasePrefix + shard, Owner, 7), ownership.FenceFor(Group));
        Assert.Equal([shard], ownership.Held);
        Assert.True(ownership.TryGetGrant(shard, out var grant));
        Assert.Equal(7, grant.Epoch);

        Assert.False(ownership.Owns(otherGroup));
        Assert.Null(ownership.FenceFor(otherGroup));
    }

    [Fact]
    public void Grant_AgainWithANewerEpoch_FencesWithTheNewEpoch()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);

        ownership.Grant(new ShardGrant(shard, Owner, 3, null, NoBuckets));
        ownership.Grant(new ShardGrant(shard, Owner, 4, null, NoBuckets));

        Assert.Equal(new ShardFence(ShardOwnership.LeasePrefix + shard, Owner, 4), ownership.FenceFor(Group));
        Assert.Single(ownership.Held);
    }

    [Fact]
    public void Revoke_StopsOwningAndFencing()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        ownership.Grant(new ShardGrant(shard, Owner, 1, null, NoBuckets));

        Assert.False(ownership.Revoke(shard, epoch: 2));
        Assert.True(ownership.Owns(Group));
        Assert.True(ownership.Revoke(shard, epoch: 1));

        Assert.False(ownership.Owns(Group));
        Assert.Null(ownership.FenceFor(Group));
        Assert.Empty(ownership.Held);
        Assert.False(ownership.TryGetGrant(shard, out _));
        Assert.False(ownership.Revoke(shard, epoch: 1));
    }

    [Fact]
    public void StartTokens_WithASavedBucket_AddsWhatAccruedSinceItWasSaved()
    {
        var clock = new FakeTimeProvider();
        var savedAt = clock.GetUtcNow();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            ShardMap.ShardOf(Group, Shards),
            Owner,
            1,
            null,
            new Dictionary<string, SavedBucket> { [Group] = new(1.5, savedAt) }));

        Assert.Equal(1.5, Tokens(ownership, clock, rate: 2, burst: 10), precision: 9);

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3.5, Tokens(ownership, clock, rate: 2, burst: 10), precision: 9);

        clock.Advance(TimeSpan.FromSeconds(99));
        Assert.Equal(10, Tokens(ownership, clock, rate: 2, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_WithASavedBucketFullerThanANewlyLowerBurst_IsCappedAtTheBurst()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            ShardMap.ShardOf(Group, Shards),
            Owner,
            1,
            null,
            new Dictionary<string, SavedBucket> { [Group] = new(8, clock.GetUtcNow()) }));

        Assert.Equal(5, Tokens(ownership, clock, rate: 2, burst: 5), precision: 9);
    }

    [Fact]
    public void StartTokens_WithASavedBucketFromALaterClock_AddsNothingForNegativeTime()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            ShardMap.ShardOf(Group, Shards),
            Owner,
            1,
            null,
            new Dictionary<string, SavedBucket> { [Group] = new(1.5, clock.GetUtcNow() + TimeSpan.FromSeconds(3)) }));

        Assert.Equal(1.5, Tokens(ownership, clock, rate: 2, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_AfterAFailover_IsOnlyWhatAccruedSinceTheOwnerWentQuiet()
    {
        var clock = new FakeTimeProvider();
        var quietSince = clock.GetUtcNow();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(Group, Shards), Owner, 2, quietSince, NoBuckets));

        Assert.Equal(0, Tokens(ownership, clock, rate: 0.5, burst: 10), precision: 9);

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(2.0, Tokens(ownership, clock, rate: 0.5, burst: 10), precision: 9);

        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(10, Tokens(ownership, clock, rate: 0.5, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_BeforeTheOwnerWentQuiet_IsZeroNotNegative()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(Group, Shards), Owner, 2, clock.GetUtcNow() + TimeSpan.FromSeconds(5), NoBuckets));

        Assert.Equal(0, Tokens(ownership, clock, rate: 0.5, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_ASavedBucketWinsOverQuietSince()
    {
        var clock = new FakeTimeProvider();
        var now = clock.GetUtcNow();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            ShardMap.ShardOf(Group, Shards),
            Owner,
            1,
            now,
            new Dictionary<string, SavedBucket> { [Group] = new(4, now) }));

        Assert.Equal(4, Tokens(ownership, clock, rate: 1, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_ReleasedShardWithoutASavedBucketForTheGroup_IsNullForAFullBucket()
    {
        var clock = new FakeTimeProvider();
        var shard = ShardMap.ShardOf(Group, Shards);
        var neighbour = GroupInShard(shard, except: Group);
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            shard,
            Owner,
            5,
            null,
            new Dictionary<string, SavedBucket> { [neighbour] = new(0, clock.GetUtcNow()) }));

        Assert.True(ownership.Owns(Group));
        Assert.Null(StartTokens(ownership, clock, rate: 2, burst: 10));
        Assert.Equal(0, ownership.StartTokens(neighbour, 2, 10, clock.GetUtcNow()).GetValueOrDefault(double.NaN), precision: 9);
    }

    [Fact]
    public void StartTokens_ForAShardNotHeld_IsNull()
    {
        var clock = new FakeTimeProvider();
        var shard = ShardMap.ShardOf(Group, Shards);
        var other = GroupInAnotherShard(shard);
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(
            ShardMap.ShardOf(other, Shards),
            Owner,
            1,
            clock.GetUtcNow(),
            new Dictionary<string, SavedBucket> { [Group] = new(0, clock.GetUtcNow()) }));

        Assert.Null(StartTokens(ownership, clock, rate: 2, burst: 10));
    }

    [Fact]
    public void Left_BucketsAreTakenOncePerShard_AndANewGrantDropsWhatWasLeft()
    {
        var clock = new FakeTimeProvider();
        var shard = ShardMap.ShardOf(Group, Shards);
        var neighbour = GroupInShard(shard, except: Group);
        var other = GroupInAnotherShard(shard);
        var ownership = ShardOwnership.Clustered(Shards);

        ownership.Left(Group, 1.5, clock.GetUtcNow());
        ownership.Left(neighbour, 0.25, clock.GetUtcNow());
        ownership.Left(other, 3, clock.GetUtcNow());

        var left = ownership.TakeLeft(shard);
        Assert.Equal(new Dictionary<string, SavedBucket> { [Group] = new(1.5, clock.GetUtcNow()), [neighbour] = new(0.25, clock.GetUtcNow()) }, left);
        Assert.Empty(ownership.TakeLeft(shard));

        ownership.Grant(new ShardGrant(ShardMap.ShardOf(other, Shards), Owner, 1, null, NoBuckets));
        Assert.Empty(ownership.TakeLeft(ShardMap.ShardOf(other, Shards)));
    }

    [Fact]
    public void TryParseLease_ReadsTheShardOfAGroupShardLeaseOnly()
    {
        Assert.True(ShardOwnership.TryParseLease("clusterqueue-shard-groups-17", out var shard));
        Assert.Equal(17, shard);
        Assert.False(ShardOwnership.TryParseLease("clusterqueue-split-brain", out _));
        Assert.False(ShardOwnership.TryParseLease("clusterqueue-shard-groups-", out _));
        Assert.False(ShardOwnership.TryParseLease("clusterqueue-shard-groups--1", out _));
        Assert.False(ShardOwnership.TryParseLease("clusterqueue-shard-other-1", out _));
    }

    private static double? StartTokens(ShardOwnership ownership, FakeTimeProvider clock, double rate, int burst) =>
        ownership.StartTokens(Group, rate, burst, clock.GetUtcNow());

    /// <summary>The start tokens, which must not be null (null means a full bucket).</summary>
    private static double Tokens(ShardOwnership ownership, FakeTimeProvider clock, double rate, int burst)
    {
        var tokens = StartTokens(ownership, clock, rate, burst);
        Assert.NotNull(tokens);
        return tokens.Value;
    }

    private static string GroupInAnotherShard(int shard) =>
        Enumerable.Range(0, 10_000).Select(i => $"g-{i}").First(group => ShardMap.ShardOf(group, Shards) != shard);

    private static string GroupInShard(int shard, string except) =>
        Enumerable.Range(0, 1_000_000).Select(i => $"g-{i}").First(group => group != except && ShardMap.ShardOf(group, Shards) == shard);
}
