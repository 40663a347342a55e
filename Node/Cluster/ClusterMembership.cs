using Akka;
using Akka.Actor;
using Akka.Cluster;
using ClusterQueue.Node.Observability;
using static Akka.Cluster.ClusterEvent;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// This node as an Akka.Cluster member: joins itself when no seed nodes are configured, tells readiness when the
/// member is Up (and when it is no longer a member), logs the other members' comings and goings, and counts members
/// for the metrics.
/// </summary>
public sealed class ClusterMembership(NodeReadiness readiness, ILogger<ClusterMembership> logger)
{
    /// <summary>
    /// Cluster.Shutdown, which Akka keeps internal (its own downing calls it): the extension stops, so the leave and
    /// exiting phases of CoordinatedShutdown find it terminated and pass at once.
    /// </summary>
    private static readonly System.Reflection.MethodInfo ShutdownCluster =
        typeof(Akka.Cluster.Cluster).GetMethod("Shutdown", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic, Type.EmptyTypes)
        ?? throw new InvalidOperationException("Akka.Cluster.Cluster.Shutdown() was not found; this Akka.Cluster version is not the one the node was built against.");

    private readonly ILogger _logger = logger;
    private Akka.Cluster.Cluster? _cluster;

    /// <summary>Members Up (or WeaklyUp) as this node sees them; 0 before the actor system has started.</summary>
    public int UpMembers
    {
        get
        {
            var state = _cluster?.State;
            return state is null ? 0 : state.Members.Count(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp);
        }
    }

    /// <summary>Members the failure detector of some member marks unreachable.</summary>
    public int UnreachableMembers => _cluster?.State.Unreachable.Count ?? 0;

    /// <summary>This node's own address as members know it: what another node names as its seed.</summary>
    public Address? SelfAddress => _cluster?.SelfAddress;

    /// <summary>Called once the actor system runs: joins (itself, when there are no seed nodes) and starts listening.</summary>
    internal void Start(ActorSystem system, bool joinSelf)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        _cluster = cluster;
        system.ActorOf(Props.Create(() => new Listener(this, cluster)), "membership");
        cluster.RegisterOnMemberUp(() =>
        {
            readiness.MarkMemberUp();
            Log.MemberSelfUp(_logger, cluster.SelfAddress.ToString());
        });
        cluster.RegisterOnMemberRemoved(readiness.MarkMemberRemoved);

        // A member alone has nobody to tell it is leaving, and leaving waits for two leader ticks all the same (over a
        // second, on every stop of the embedded node). Shutting the cluster extension down ends it at once instead.
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "leave-alone-at-once", () =>
        {
            if (cluster.State.Members.All(m => m.Address == cluster.SelfAddress))
            {
                readiness.MarkMemberRemoved();
                Log.LeftAlone(_logger);
                ShutdownCluster.Invoke(cluster, null);
            }

            return Task.FromResult(Done.Instance);
        });
        if (joinSelf)
        {
            cluster.Join(cluster.SelfAddress);
        }
    }

    /// <summary>Subscribed to the cluster's events; logs each change of another member (and this one's own leaving).</summary>
    private sealed class Listener : ReceiveActor
    {
        private readonly Akka.Cluster.Cluster _cluster;

        public Listener(ClusterMembership membership, Akka.Cluster.Cluster cluster)
        {
            _cluster = cluster;
            var log = membership._logger;
            Receive<MemberUp>(e => Log.MemberUp(log, Name(e.Member), membership.UpMembers));
            Receive<MemberLeft>(e => Log.MemberLeaving(log, Name(e.Member)));
            Receive<MemberDowned>(e => Log.MemberDowned(log, Name(e.Member)));
            Receive<MemberRemoved>(e => Log.MemberRemoved(log, Name(e.Member), e.PreviousStatus.ToString(), membership.UpMembers));
            Receive<UnreachableMember>(e => Log.MemberUnreachable(log, Name(e.Member)));
            Receive<ReachableMember>(e => Log.MemberReachable(log, Name(e.Member)));
            Receive<CurrentClusterState>(_ => { });
        }

        protected override void PreStart() =>
            _cluster.Subscribe(Self, InitialStateAsEvents, typeof(IMemberEvent), typeof(IReachabilityEvent));

        protected override void PostStop() => _cluster.Unsubscribe(Self);

        private string Name(Member member) =>
            member.Address == _cluster.SelfAddress ? $"{member.Address} (this node)" : member.Address.ToString();
    }
}
