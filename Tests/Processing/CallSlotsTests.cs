using ClusterQueue.Node.Processing;

namespace ClusterQueue.Tests.Processing;

public sealed class CallSlotsTests
{
    private sealed class Waiter : ISlotWaiter
    {
        public int Woken { get; private set; }

        public void SlotsFreed() => Woken++;
    }

    [Fact]
    public void Take_GrantsWhatIsFree_AndQueuesAShortTakerOnce()
    {
        var slots = new CallSlots(5);
        var first = new Waiter();
        var second = new Waiter();

        Assert.Equal(3, slots.Take(3, first));
        Assert.Equal(2, slots.Take(4, second));
        Assert.Equal(0, slots.Take(4, second));
        Assert.Equal(5, slots.InUse);

        // One return wakes the one in line, once, however often it asked.
        slots.Return(1);
        Assert.Equal(1, second.Woken);
        slots.Return(1);
        Assert.Equal(1, second.Woken);
        Assert.Equal(0, first.Woken);
        Assert.Equal(3, slots.InUse);
    }

    [Fact]
    public void AWaiterThatLeft_IsSkipped_AndTheTurnGoesToTheNextInLine()
    {
        var slots = new CallSlots(1);
        var holder = new Waiter();
        var gone = new Waiter();
        var next = new Waiter();
        Assert.Equal(1, slots.Take(1, holder));
        Assert.Equal(0, slots.Take(1, gone));
        Assert.Equal(0, slots.Take(1, next));

        slots.Leave(gone);
        slots.Return(1);

        Assert.Equal((0, 1), (gone.Woken, next.Woken));
    }

    [Fact]
    public void AWaiterThatLeftAndCameBack_IsWokenOnceInItsNewPlace()
    {
        var slots = new CallSlots(1);
        var holder = new Waiter();
        var returning = new Waiter();
        var other = new Waiter();
        Assert.Equal(1, slots.Take(1, holder));
        Assert.Equal(0, slots.Take(1, returning));
        slots.Leave(returning);
        Assert.Equal(0, slots.Take(1, other));
        Assert.Equal(0, slots.Take(1, returning));

        // Its old place is stale: the turn goes to the one that queued before its new place.
        slots.Return(1);
        Assert.Equal((1, 0), (other.Woken, returning.Woken));
        Assert.Equal(1, slots.Take(1, other));
        slots.Return(1);
        Assert.Equal(1, returning.Woken);
    }

    [Fact]
    public void Waiters_AreWokenInTurn()
    {
        var slots = new CallSlots(1);
        var holder = new Waiter();
        Waiter[] line = [new(), new(), new()];
        Assert.Equal(1, slots.Take(1, holder));
        foreach (var waiter in line)
        {
            Assert.Equal(0, slots.Take(1, waiter));
        }

        slots.Return(1);
        Assert.Equal([1, 0, 0], line.Select(w => w.Woken));

        // The first takes the slot; the next is woken only when it comes back.
        Assert.Equal(1, slots.Take(1, line[0]));
        Assert.Equal([1, 0, 0], line.Select(w => w.Woken));
        slots.Return(1);
        Assert.Equal([1, 1, 0], line.Select(w => w.Woken));
    }

    [Fact]
    public void ATurnNotTaken_IsPassedOn_AndSparesGoToTheNextInLine()
    {
        var slots = new CallSlots(4);
        var holder = new Waiter();
        var gone = new Waiter();
        var next = new Waiter();
        var last = new Waiter();
        Assert.Equal(4, slots.Take(4, holder));
        Assert.Equal(0, slots.Take(2, gone));
        Assert.Equal(0, slots.Take(2, next));
        Assert.Equal(0, slots.Take(2, last));

        slots.Return(3);
        Assert.Equal(1, gone.Woken);

        // The woken one needs nothing any more: its turn goes to the next.
        slots.PassOn();
        Assert.Equal(1, next.Woken);

        // That one takes fewer than are free: the rest wake the one after it.
        Assert.Equal(1, slots.Take(1, next));
        Assert.Equal(1, last.Woken);
        Assert.Equal(2, slots.InUse);
    }

    [Fact]
    public void Return_NeverFreesMoreThanTheLimit()
    {
        var slots = new CallSlots(2);
        slots.Return(5);

        Assert.Equal(0, slots.InUse);
        Assert.Equal(2, slots.Take(3, new Waiter()));
    }

    [Fact]
    public void AtALargeLimit_ReturnedSlotsMakeATurnInABatch_AndWhatItsTakerLeavesGoesOnAtOnce()
    {
        var slots = new CallSlots(1000);
        Assert.Equal(62, slots.HandoffBatch);
        var holder = new Waiter();
        var first = new Waiter();
        var second = new Waiter();
        Assert.Equal(1000, slots.Take(1000, holder));
        Assert.Equal(0, slots.Take(64, first));
        Assert.Equal(0, slots.Take(1, second));

        // Returned one by one while 15/16 are in use, slots wait for a batch.
        slots.Return(1);
        slots.Return(60);
        Assert.Equal((0, 0), (first.Woken, second.Woken));
        slots.Return(1);
        Assert.Equal((1, 0), (first.Woken, second.Woken));

        // The first takes part of the batch; the rest is the second's turn at once, not after another batch.
        Assert.Equal(50, slots.Take(50, first));
        Assert.Equal(1, second.Woken);
        Assert.Equal(1, slots.Take(1, second));
        Assert.Equal(989, slots.InUse);
    }
}
