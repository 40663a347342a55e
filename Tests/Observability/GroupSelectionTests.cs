using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Tests.Observability;

public sealed class GroupSelectionTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Choose_AtOrBelowTheLimit_ShowsEveryGroup_AndNothingUnderOther()
    {
        var selection = GroupSelection.Choose([Group("a"), Group("b")], Depths(("a", 5, 10)), max: 2, Now);

        Assert.False(selection.Bounded);
        Assert.Equal(["a", "b"], selection.Shown.Select(g => g.Id).Order());
        Assert.Equal(0, selection.Hidden);
        Assert.Equal(new GroupBacklog("a", 5, 10, false), selection.Shown.Single(g => g.Id == "a"));
        Assert.Equal(new GroupBacklog("b", 0, 0, false), selection.Shown.Single(g => g.Id == "b"));
    }

    [Fact]
    public void Choose_AboveTheLimit_KeepsTheLargestBacklogs_AndSumsTheRest()
    {
        var groups = new[] { Group("a"), Group("b"), Group("c"), Group("d"), Group("e", paused: true) };

        var selection = GroupSelection.Choose(groups, Depths(("a", 1, 100), ("b", 50, 2), ("c", 7, 30), ("e", 2, 40)), max: 2, Now);

        Assert.True(selection.Bounded);
        Assert.Equal(["b", "c"], selection.Shown.Select(g => g.Id).Order());
        Assert.Equal(3, selection.Hidden);
        Assert.Equal(1 + 2, selection.HiddenPending);
        Assert.Equal(100, selection.HiddenOldestAgeSeconds);
    }

    [Fact]
    public void Choose_TiedBacklogs_PreferTheSmallerId_SoIdleGroupsKeepTheirPlaces()
    {
        var groups = Enumerable.Range(0, 100).Select(i => Group($"g{i:D3}")).Reverse().ToList();

        var selection = GroupSelection.Choose(groups, Depths(), max: 3, Now);

        Assert.Equal(["g000", "g001", "g002"], selection.Shown.Select(g => g.Id).Order());
    }

    [Fact]
    public void Choose_TiedBacklogs_PreferGroupsThatDidSomething_OverIdleOnes()
    {
        var groups = new[] { Group("a"), Group("b"), Group("c"), Group("z") };

        var selection = GroupSelection.Choose(groups, Depths(("c", 1, 0)), max: 2, Now, hadEvents: id => id == "z");

        Assert.Equal(["c", "z"], selection.Shown.Select(g => g.Id).Order());
    }

    [Fact]
    public void Choose_MessagesNotReadyYet_CountAsBacklogButNotAge()
    {
        var depths = new Dictionary<string, QueueDepth> { ["a"] = new(3, null), ["b"] = new(1, Now.AddSeconds(1)) };

        var selection = GroupSelection.Choose([Group("a"), Group("b")], depths, max: 5, Now);

        Assert.Equal(new GroupBacklog("a", 3, 0, false), selection.Shown.Single(g => g.Id == "a"));
        Assert.Equal(0, selection.Shown.Single(g => g.Id == "b").OldestAgeSeconds);
    }

    private static GroupSettings Group(string id, bool paused = false) =>
        new(id, 10, 10, 1, new Uri("http://127.0.0.1:9/"), TimeSpan.FromSeconds(30), 5, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), null, null, 1024, Now, Now)
        {
            PausedAt = paused ? Now : null,
        };

    private static Dictionary<string, QueueDepth> Depths(params (string Id, long Pending, double AgeSeconds)[] depths) =>
        depths.ToDictionary(d => d.Id, d => new QueueDepth(d.Pending, Now.AddSeconds(-d.AgeSeconds)));
}
