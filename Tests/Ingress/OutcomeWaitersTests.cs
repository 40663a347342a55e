using ClusterQueue.Node.Ingress;

namespace ClusterQueue.Tests.Ingress;

public sealed class OutcomeWaitersTests
{
    [Fact]
    public void Announce_CompletesEveryWaiterOfThatMessage_AndNoOther()
    {
        var waiters = new OutcomeWaiters();
        var first = waiters.Next("m1");
        var second = waiters.Next("m1");
        var other = waiters.Next("m2");

        waiters.Announce("m1");

        Assert.True(first.IsCompleted);
        Assert.Same(first, second);
        Assert.False(other.IsCompleted);
        Assert.Equal(1, waiters.Waiting);
    }

    [Fact]
    public void Leave_ByOneOfTwoWaiters_KeepsTheEntryForTheOther_AndTheLastLeavesNothing()
    {
        var waiters = new OutcomeWaiters();
        var first = waiters.Next("m1");
        var second = waiters.Next("m1");

        waiters.Leave("m1", first);
        waiters.Announce("m1");
        Assert.True(second.IsCompleted);

        var again = waiters.Next("m1");
        waiters.Leave("m1", again);
        Assert.Equal(0, waiters.Waiting);
    }

    [Fact]
    public void Leave_AfterTheAnnouncement_DoesNotTouchANewerWaitersEntry()
    {
        var waiters = new OutcomeWaiters();
        var old = waiters.Next("m1");
        waiters.Announce("m1");
        var newer = waiters.Next("m1");

        waiters.Leave("m1", old);
        waiters.Announce("m1");

        Assert.True(newer.IsCompleted);
        Assert.Equal(0, waiters.Waiting);
    }
}
