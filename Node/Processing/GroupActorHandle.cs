using Akka.Actor;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The dispatcher's side of one group actor, for as long as that actor lives: its address, how many messages the
/// dispatcher has sent it (an idle actor retires only when it has read them all, so a wake-up is never lost), its
/// unread wake-up, and what its bucket held when it stopped. Every send happens under the dispatcher's lock.
/// </summary>
internal sealed class GroupActorHandle(string groupId)
{
    // A timeout for a snapshot that never comes (the actor failed meanwhile): the stats endpoint answers rather than hangs.
    private static readonly TimeSpan InspectTimeout = TimeSpan.FromSeconds(10);

    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // 1 while a wake-up sits unread in the mailbox: a busy group gets one per ingest, and one unread is as good as many.
    private int _wakePending;
    private double _leftTokens;
    private DateTimeOffset _leftAt;
    private double _leftRate;
    private int _leftBurst;

    public string GroupId { get; } = groupId;

    /// <summary>Set once, by the dispatcher, before the first send.</summary>
    public IActorRef Actor { get; set; } = ActorRefs.Nobody;

    /// <summary>How many messages the dispatcher has sent; read and written under its lock.</summary>
    public int Sent { get; private set; }

    /// <summary>Completes when the actor has stopped: retired, stopped with nothing in flight, or failed.</summary>
    public Task Completion => _stopped.Task;

    public void Wake()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            Send(GroupProtocol.Wake.Instance);
        }
    }

    public void Reconfigure(Groups.GroupSettings settings) => Send(new GroupProtocol.Reconfigure(settings));

    public void Stop() => Send(GroupProtocol.Stop.Instance);

    public Task<ActorSnapshot> InspectAsync()
    {
        Sent++;
        return Actor.Ask<ActorSnapshot>(GroupProtocol.Inspect.Instance, InspectTimeout);
    }

    /// <summary>The bucket's tokens at <paramref name="now"/>; read only once <see cref="Completion"/> has finished.</summary>
    public double RemainingTokens(DateTimeOffset now) =>
        Math.Min(_leftBurst, _leftTokens + (_leftRate * Math.Max(0, (now - _leftAt).TotalSeconds)));

    /// <summary>Called by the actor when it reads its wake-up, before it leases: a message committed after this wakes it again.</summary>
    internal void WakeRead() => Volatile.Write(ref _wakePending, 0);

    /// <summary>Called by the actor as it stops, with its bucket as it was then.</summary>
    internal void Stopped(double tokens, DateTimeOffset at, double ratePerSecond, int burst)
    {
        _leftTokens = tokens;
        _leftAt = at;
        _leftRate = ratePerSecond;
        _leftBurst = burst;
        _stopped.TrySetResult();
    }

    private void Send(object message)
    {
        Sent++;
        Actor.Tell(message, ActorRefs.NoSender);
    }
}
