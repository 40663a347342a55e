namespace ClusterQueue.Node.Processing;

/// <summary>Something that waits for <see cref="CallSlots"/> and is told when some were returned.</summary>
internal interface ISlotWaiter
{
    /// <summary>Called outside the slots' lock; must be quick (post a signal, not take the slots there and then).</summary>
    void SlotsFreed();
}

/// <summary>
/// The node-wide cap on handler calls in flight (<c>Processing:MaxCallsInFlight</c>), on top of each group's
/// maxConcurrency. Without it a node restarting into a thousand busy groups of concurrency 64 started 64,000 calls at
/// once and ran out of file descriptors. An actor takes slots before it leases, so no message is leased that could not
/// start; one that got fewer than it wanted waits in line and is woken, in turn, when calls finish. A woken actor that
/// no longer needs slots passes the turn on (<see cref="PassOn"/>), so slots are never left free while others wait.
/// <para>
/// Returned slots make a turn in a batch (<see cref="HandoffBatch"/>), not one by one: with every slot taken, handing
/// each returned slot to the next group in line made every lease a lease of one message, and the store's single
/// writer ran 20 times the statements per message (dispatch at 1,000 busy groups fell to 0.40 of ingest, from 0.72).
/// </para>
/// </summary>
internal sealed class CallSlots
{
    private readonly Lock _gate = new();
    // The line, and each waiter's place in it (so one that goes away can leave from the middle).
    private readonly LinkedList<ISlotWaiter> _waiting = new();
    private readonly Dictionary<ISlotWaiter, LinkedListNode<ISlotWaiter>> _queued = [];
    private int _free;

    public CallSlots(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        Limit = limit;
        _free = limit;
        HandoffBatch = Math.Clamp(limit / 16, 1, 64);
    }

    public int Limit { get; }

    /// <summary>
    /// How many returned slots make a waiter's turn: 1/16 of the limit, from 1 to 64 (62 at the default 1,000). While
    /// fewer are free, at least 15/16 of the slots are in use, so the calls holding them end and bring it soon. A
    /// turn's slots that its taker leaves go on to the next in line at once.
    /// </summary>
    public int HandoffBatch { get; }

    public int InUse
    {
        get
        {
            lock (_gate)
            {
                return Limit - _free;
            }
        }
    }

    /// <summary>Takes up to <paramref name="wanted"/> slots; when fewer are free, <paramref name="waiter"/> gets in line.</summary>
    public int Take(int wanted, ISlotWaiter waiter)
    {
        int granted;
        ISlotWaiter? next = null;
        lock (_gate)
        {
            granted = Math.Min(Math.Max(wanted, 0), _free);
            _free -= granted;
            if (granted < wanted && !_queued.ContainsKey(waiter))
            {
                _queued[waiter] = _waiting.AddLast(waiter);
            }

            if (_free > 0)
            {
                // This taker needed fewer than were free: the rest are the next one's turn.
                next = NextWaiter();
            }
        }

        next?.SlotsFreed();
        return granted;
    }

    public void Return(int count)
    {
        if (count <= 0)
        {
            return;
        }

        ISlotWaiter? next;
        lock (_gate)
        {
            _free = Math.Min(Limit, _free + count);
            next = _free >= HandoffBatch ? NextWaiter() : null;
        }

        next?.SlotsFreed();
    }

    /// <summary>
    /// Takes a waiter that is going away out of the line, so a turn is never given to it and lost. (A turn it was
    /// already given is its own to pass on.)
    /// </summary>
    public void Leave(ISlotWaiter waiter)
    {
        lock (_gate)
        {
            if (_queued.Remove(waiter, out var place))
            {
                _waiting.Remove(place);
            }
        }
    }

    /// <summary>A waiter that was woken but took nothing hands its turn to the next in line.</summary>
    public void PassOn()
    {
        ISlotWaiter? next;
        lock (_gate)
        {
            next = _free > 0 ? NextWaiter() : null;
        }

        next?.SlotsFreed();
    }

    private ISlotWaiter? NextWaiter()
    {
        if (_waiting.First is not { } first)
        {
            return null;
        }

        _waiting.RemoveFirst();
        _queued.Remove(first.Value);
        return first.Value;
    }
}
