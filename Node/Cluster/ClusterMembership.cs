using Akka;
using Akka.Actor;
using Akka.Cluster;
using ClusterQueue.Node.Observability;
using static Akka.Cluster.ClusterEvent;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// This node as an Akka.Cluster member: joins the members it finds in the database (<see cref="DatabaseSeeds"/>, with
/// the PostgreSQL store) or itself when no seed nodes are configured, tells readiness when the member is Up (and when
/// it is no longer a member), logs the other members' comings and goings, tells the node when they change, and counts
/// members for the metrics.
/// </summary>
public sealed class ClusterMembership(NodeReadiness readiness, ILogger<ClusterMembership> logger, DatabaseSeeds? seeds = null, IHostApplicationLifetime? lifetime = null)
{
    /// <summary>
    /// Cluster.Shutdown, which Akka keeps internal (its own downing calls it): the extension stops, so the leave and
    /// exiting phases of CoordinatedShutdown find it terminated and pass at once.
    /// </summary>
    private static readonly System.Reflection.MethodInfo ShutdownCluster =
        typeof(Akka.Cluster.Cluster).GetMethod("Shutdown", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic, Type.EmptyTypes)
        ?? throw new InvalidOperationException("Akka.Cluster.Cluster.Shutdown() was not found; this Akka.Cluster version is not the one the node was built against.");

    private readonly ILogger _logger = logger;
    private readonly CancellationTokenSource _leaving = new();
    private Akka.Cluster.Cluster? _cluster;
    private Task? _announcing;

    /// <summary>Another member joined, left or was removed: shards may have moved.</summary>
    public event Action? MembersChanged;

    /// <summary>Members Up (or WeaklyUp) as this node sees them; 0 before the actor system has started.</summary>
    public int UpMembers
    {
        get
        {
            var state = _cluster?.State;
            return state is null ? 0 : state.Members.Count(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp);
        }
    }

    /// <summary>The node ids of members that are leaving (or exiting) the cluster, by their <c>node-{id}</c> role.</summary>
    public IReadOnlySet<string> LeavingNodes =>
        _cluster?.State.Members
            .Where(m => m.Status is MemberStatus.Leaving or MemberStatus.Exiting)
            .Select(Processing.RendezvousAllocation.NodeIdOf)
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal)
        ?? [];

    /// <summary>Members the failure detector of some member marks unreachable.</summary>
    public int UnreachableMembers => _cluster?.State.Unreachable.Count ?? 0;

    /// <summary>This node's own address as members know it: what another node names as its seed.</summary>
    public Address? SelfAddress => _cluster?.SelfAddress;

    /// <summary>
    /// Called once the actor system runs: starts listening, and joins, unless Akka joins by itself (seed nodes, or
    /// Cluster Bootstrap in Kubernetes): the members in the database with the PostgreSQL store, else itself.
    /// </summary>
    internal void Start(ActorSystem system, bool joinedByAkka)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        _cluster = cluster;
        system.ActorOf(Props.Create(() => new Listener(this, cluster)), "membership");
        cluster.RegisterOnMemberUp(() =>
        {
            readiness.MarkMemberUp();
            Log.MemberSelfUp(_logger, cluster.SelfAddress.ToString());
        });
        cluster.RegisterOnMemberRemoved(() =>
        {
            readiness.MarkMemberRemoved();

            // Downed (or left) while the process runs on: a member never rejoins with the same actor system, so the
            // node stops, and its supervisor (Kubernetes, systemd) starts a fresh one that joins anew.
            if (lifetime is { ApplicationStopping.IsCancellationRequested: false })
            {
                Log.RemovedWhileRunning(_logger);
                lifetime.StopApplication();
            }
        });

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
        if (seeds is null)
        {
            if (!joinedByAkka)
            {
                cluster.Join(cluster.SelfAddress);
            }

            return;
        }

        // With the database, the member's row is kept whoever joins: placement and the dashboard read it.
        _announcing = Task.Run(() => seeds.RunAsync(cluster, join: !joinedByAkka, _leaving.Token));
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseClusterLeave, "forget-seed-address", async () =>
        {
            // A downed member's membership is over already (its cluster extension is shut down): its peers wait for its
            // remoting to go before they remove it, so nothing may hold the shutdown up, least of all the database that
            // may be why it was downed. Its row lapses by itself.
            if (!cluster.IsTerminated)
            {
                await StopAnnouncingAsync();
            }

            return Done.Instance;
        });
    }

    /// <summary>
    /// Lets this member's row lapse, so joiners stop picking it and shard placement passes it over
    /// (<see cref="DatabaseSeeds.LapsedNodes"/>): the first step of a drain. Idempotent; nothing to do without the database.
    /// </summary>
    public async Task StopAnnouncingAsync()
    {
        if (seeds is null || _cluster is not { } cluster || _announcing is not { } announcing)
        {
            return;
        }

        await _leaving.CancelAsync();
        await announcing.ContinueWith(_ => { }, TaskScheduler.Default);
        try
        {
            await seeds.ForgetAsync(cluster.SelfAddress, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex)
        {
            // The row expires by itself; a joiner that picks it meanwhile hears no answer and looks again.
            Log.SeedRenewalFailed(_logger, ex);
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
            Receive<MemberUp>(e =>
            {
                Log.MemberUp(log, Name(e.Member), membership.UpMembers);
                Changed(membership, e.Member);
            });
            Receive<MemberLeft>(e => Log.MemberLeaving(log, Name(e.Member)));
            Receive<MemberExited>(e => Changed(membership, e.Member));
            Receive<MemberDowned>(e => Log.MemberDowned(log, Name(e.Member)));
            Receive<MemberRemoved>(e =>
            {
                Log.MemberRemoved(log, Name(e.Member), e.PreviousStatus.ToString(), membership.UpMembers);
                Changed(membership, e.Member);
            });
            Receive<UnreachableMember>(e => Log.MemberUnreachable(log, Name(e.Member)));
            Receive<ReachableMember>(e => Log.MemberReachable(log, Name(e.Member)));
            Receive<CurrentClusterState>(_ => { });
        }

        protected override void PreStart() =>
            _cluster.Subscribe(Self, InitialStateAsEvents, typeof(IMemberEvent), typeof(IReachabilityEvent));

        protected override void PostStop() => _cluster.Unsubscribe(Self);

        private void Changed(ClusterMembership membership, Member member)
        {
            if (member.Address != _cluster.SelfAddress)
            {
                membership.MembersChanged?.Invoke();
            }
        }

        private string Name(Member member) =>
            member.Address == _cluster.SelfAddress ? $"{member.Address} (this node)" : member.Address.ToString();
    }
}
