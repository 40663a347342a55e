using Akka.Actor;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// This node's record of one live group actor (a sharded entity), for as long as it lives: its address, for the local
/// senders that need no routing (a changed definition, the stats endpoint), and whether a wake-up is on its way to it
/// unread. Made by the actor as it starts, dropped as it stops.
/// </summary>
internal sealed class GroupActorHandle(string groupId, IActorRef actor)
{
    // A timeout for a snapshot that never comes (the actor stopped meanwhile): the stats endpoint answers rather than hangs.
    private static readonly TimeSpan InspectTimeout = TimeSpan.FromSeconds(10);

    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // 1 while a wake-up sits unread on its way: a busy group gets one per ingest, and one unread is as good as many.
    private int _wakePending;

    public string GroupId { get; } = groupId;

    public IActorRef Actor { get; } = actor;

    /// <summary>Completes when the actor has stopped.</summary>
    public Task Completion => _stopped.Task;

    /// <summary>True for the caller that should send a wake-up: none is on its way unread.</summary>
    public bool TryMarkWakePending() => Interlocked.Exchange(ref _wakePending, 1) == 0;

    public void Reconfigure(Groups.GroupSettings settings) => Actor.Tell(new GroupProtocol.Reconfigure(settings), ActorRefs.NoSender);

    public void Stop() => Actor.Tell(GroupProtocol.Stop.Instance, ActorRefs.NoSender);

    public Task<ActorSnapshot> InspectAsync() => Actor.Ask<ActorSnapshot>(GroupProtocol.Inspect.Instance, InspectTimeout);

    /// <summary>Called by the actor when it reads a wake-up, before it leases: a message committed after this wakes it again.</summary>
    internal void WakeRead() => Volatile.Write(ref _wakePending, 0);

    internal void Stopped() => _stopped.TrySetResult();
}
