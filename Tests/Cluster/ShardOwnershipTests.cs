using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Cluster;

public sealed class ShardOwnershipTests
{
    private const int Shards = 256;
    private const string Group = "orders";
    private const string Owner = "clusterqueue@127.0.0.1:4053";

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
            Assert.Null(ownership.EpochOf(group));
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

        ownership.Grant(new ShardGrant(shard, Owner, 7, null));

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

        ownership.Grant(new ShardGrant(shard, Owner, 3, null));
        ownership.Grant(new ShardGrant(shard, Owner, 4, null));

        Assert.Equal(new ShardFence(ShardOwnership.LeasePrefix + shard, Owner, 4), ownership.FenceFor(Group));
        Assert.Single(ownership.Held);
    }

    [Fact]
    public void Revoke_StopsOwningAndFencing()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        ownership.Grant(new ShardGrant(shard, Owner, 1, null));

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
    public void Tenure_EndsWhenTheShardIsRevoked_NotBefore()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        ownership.Grant(new ShardGrant(shard, Owner, 1, null));
        var tenure = ownership.TenureOf(Group);

        ownership.Grant(new ShardGrant(shard, Owner, 1, null));
        Assert.False(ownership.Revoke(shard, epoch: 2));
        Assert.False(tenure.IsCancellationRequested);

        Assert.True(ownership.Revoke(shard, epoch: 1));
        Assert.True(tenure.IsCancellationRequested);
        Assert.True(ownership.TenureOf(Group).IsCancellationRequested);
    }

    [Fact]
    public void Tenure_EndsWhenANewEpochReplacesIt_AndTheNewOneRuns()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        ownership.Grant(new ShardGrant(shard, Owner, 3, null));
        var old = ownership.TenureOf(Group);

        ownership.Grant(new ShardGrant(shard, Owner, 4, null));

        Assert.True(old.IsCancellationRequested);
        Assert.False(ownership.TenureOf(Group).IsCancellationRequested);
    }

    [Fact]
    public void Tenure_NeverEndsStandalone_AndHasEndedForAShardNotHeld()
    {
        Assert.False(ShardOwnership.Standalone().TenureOf(Group).CanBeCanceled);
        Assert.True(ShardOwnership.Clustered(Shards).TenureOf(Group).IsCancellationRequested);
    }

    [Fact]
    public void SavedState_AddsWhatAccruedSinceItWasSaved_CappedAtTheBurst()
    {
        var clock = new FakeTimeProvider();
        var saved = new SavedGroupState(1.5, clock.GetUtcNow(), null, null, 1);

        Assert.Equal(1.5, saved.TokensAt(2, 10, clock.GetUtcNow()), precision: 9);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3.5, saved.TokensAt(2, 10, clock.GetUtcNow()), precision: 9);
        Assert.Equal(3, saved.TokensAt(2, 3, clock.GetUtcNow()), precision: 9);
        clock.Advance(TimeSpan.FromSeconds(99));
        Assert.Equal(10, saved.TokensAt(2, 10, clock.GetUtcNow()), precision: 9);
    }

    [Fact]
    public void SavedState_FromALaterClock_AddsNothingForNegativeTime()
    {
        var clock = new FakeTimeProvider();
        var saved = new SavedGroupState(1.5, clock.GetUtcNow() + TimeSpan.FromSeconds(3), null, null, 1);

        Assert.Equal(1.5, saved.TokensAt(2, 10, clock.GetUtcNow()), precision: 9);
    }

    [Fact]
    public void Trusts_Standalone_WhateverItSaved()
    {
        var ownership = ShardOwnership.Standalone();

        Assert.True(ownership.Trusts(Group, new SavedGroupState(0, DateTimeOffset.UnixEpoch, null, null, null)));
        Assert.True(ownership.Trusts(Group, new SavedGroupState(0, DateTimeOffset.UnixEpoch, null, null, 4)));
    }

    [Fact]
    public void Trusts_Clustered_OnlyStateSavedSinceTheLeaseWasLastTakenFromAFailedOwner()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        SavedGroupState SavedAt(long? epoch) => new(1, DateTimeOffset.UnixEpoch, null, null, epoch);

        // Not held: nothing is trusted, as nothing of the group may start here.
        Assert.False(ownership.Trusts(Group, SavedAt(1)));

        // Epoch 7, last taken from a failed owner at epoch 5: the owners of epochs 5 and 6 handed over cleanly.
        ownership.Grant(new ShardGrant(shard, Owner, 7, null, TakenOverAt: 5));
        Assert.True(ownership.Trusts(Group, SavedAt(7)));
        Assert.True(ownership.Trusts(Group, SavedAt(6)));
        Assert.True(ownership.Trusts(Group, SavedAt(5)));
        Assert.False(ownership.Trusts(Group, SavedAt(4)));
        Assert.False(ownership.Trusts(Group, SavedAt(8)));
        Assert.False(ownership.Trusts(Group, SavedAt(null)));
        Assert.Equal(7, ownership.EpochOf(Group));
        Assert.Null(ownership.EpochOf(GroupInAnotherShard(shard)));
    }

    [Fact]
    public void NothingSaved_IsKeptForTheShardsTenure_AndForgottenWhenItIsGrantedOrRevoked()
    {
        var ownership = ShardOwnership.Clustered(Shards);
        var shard = ShardMap.ShardOf(Group, Shards);
        var other = GroupInAnotherShard(shard);
        ownership.Grant(new ShardGrant(shard, Owner, 1, null));

        ownership.SetNothingSaved(Group, true);
        ownership.SetNothingSaved(other, true);
        Assert.True(ownership.NothingSaved(Group));
        Assert.False(ownership.NothingSaved(other));

        ownership.SetNothingSaved(Group, false);
        Assert.False(ownership.NothingSaved(Group));

        ownership.SetNothingSaved(Group, true);
        ownership.Grant(new ShardGrant(shard, Owner, 2, null));
        Assert.False(ownership.NothingSaved(Group));

        ownership.SetNothingSaved(Group, true);
        Assert.True(ownership.Revoke(shard, 2));
        Assert.False(ownership.NothingSaved(Group));
    }

    [Fact]
    public void StartTokens_AfterAFailover_IsOnlyWhatAccruedSinceTheOwnerWentQuiet()
    {
        var clock = new FakeTimeProvider();
        var quietSince = clock.GetUtcNow();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(Group, Shards), Owner, 2, quietSince));

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
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(Group, Shards), Owner, 2, clock.GetUtcNow() + TimeSpan.FromSeconds(5)));

        Assert.Equal(0, Tokens(ownership, clock, rate: 0.5, burst: 10), precision: 9);
    }

    [Fact]
    public void StartTokens_ReleasedShard_IsNullForAFullBucket()
    {
        var clock = new FakeTimeProvider();
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(Group, Shards), Owner, 5, null));

        Assert.True(ownership.Owns(Group));
        Assert.Null(StartTokens(ownership, clock, rate: 2, burst: 10));
    }

    [Fact]
    public void StartTokens_ForAShardNotHeld_IsNull()
    {
        var clock = new FakeTimeProvider();
        var shard = ShardMap.ShardOf(Group, Shards);
        var other = GroupInAnotherShard(shard);
        var ownership = ShardOwnership.Clustered(Shards);
        ownership.Grant(new ShardGrant(ShardMap.ShardOf(other, Shards), Owner, 1, clock.GetUtcNow()));

        Assert.Null(StartTokens(ownership, clock, rate: 2, burst: 10));
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
}
