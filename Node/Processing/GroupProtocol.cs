using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The messages a <see cref="GroupActor"/> handles. The first five come from outside (the dispatcher, the node's call
/// slots); the rest the actor sends itself, as the outcome of work it started (a timer, a lease, a handler call, a release).
/// </summary>
internal static class GroupProtocol
{
    /// <summary>Messages may be visible. The dispatcher sends one at most until the actor has read it.</summary>
    public sealed record Wake
    {
        public static readonly Wake Instance = new();

        private Wake()
        {
        }
    }

    /// <summary>The node's call slots have room and it is this actor's turn: take some or pass the turn on.</summary>
    public sealed record SlotsFreed
    {
        public static readonly SlotsFreed Instance = new();

        private SlotsFreed()
        {
        }
    }

    /// <summary>The group's definition changed (rate, burst, concurrency, pause, target...).</summary>
    public sealed record Reconfigure(GroupSettings Settings);

    /// <summary>Lease nothing more; end once the calls in flight have finished (a drain, a handover, a deleted group).</summary>
    public sealed record Stop
    {
        public static readonly Stop Instance = new();

        private Stop()
        {
        }
    }

    /// <summary>Asks for the actor's live state; it answers the sender with an <see cref="ActorSnapshot"/>.</summary>
    public sealed record Inspect
    {
        public static readonly Inspect Instance = new();

        private Inspect()
        {
        }
    }

    /// <summary>The actor's timer fired. Only the timer armed last counts: an earlier one's tick is stale and ignored.</summary>
    public sealed record Tick(long Generation);

    /// <summary>Sent to itself behind the messages already in the mailbox, so it acts once on all of them.</summary>
    public sealed record Evaluate
    {
        public static readonly Evaluate Instance = new();

        private Evaluate()
        {
        }
    }

    /// <summary>A lease came back; <paramref name="Slots"/> call slots were taken for it when it was asked for at <paramref name="AskedAt"/>.</summary>
    public sealed record Leased(LeaseBatch Batch, int Slots, DateTimeOffset AskedAt);

    /// <summary>A lease failed; its <paramref name="Slots"/> call slots are still held.</summary>
    public sealed record LeaseFailed(Exception Error, int Slots);

    /// <summary>A handler call ended and its outcome is recorded: when its message is next visible, and until when the group pauses.</summary>
    public sealed record CallFinished(DateTimeOffset? RetryAt, DateTimeOffset? PauseUntil, bool? Refused);

    /// <summary>The messages leased ahead of their tokens are back in the queue (or their leases run out by themselves).</summary>
    public sealed record EarlyReleased
    {
        public static readonly EarlyReleased Instance = new();

        private EarlyReleased()
        {
        }
    }
}
