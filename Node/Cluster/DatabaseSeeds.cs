using Akka.Actor;
using Akka.Cluster;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// How nodes that name the same PostgreSQL database find each other with no other setting: each Up member keeps its
/// remoting address in <c>cluster_seeds</c>, renewed while it runs. A starting node takes a database lock that only
/// one joiner holds at a time, reads the live addresses and joins them, or, when there are none, forms the cluster by
/// joining itself; it writes its own address once it is Up, and only then lets the next joiner in. So two nodes
/// starting at once never form two clusters. A row of a member that died stays until it expires
/// (<c>ClusterQueue:Cluster:LeaseTtl</c>): a joiner that finds only such rows hears no answer, and looks again.
/// <para>
/// A member that Akka still reaches but whose row lapsed without leaving is cut off from the database: it cannot lease
/// messages, and its watchdog has stopped its shards. Akka would keep its shards there (a shard that cannot get its
/// lease does not hand over), so the members that reach the database down it, and its shards move to them. Only after
/// this member has renewed its own row for <see cref="CutOffConfirmation"/> with the other's row lapsed all along: after
/// a database outage every row has lapsed, and each member gets that long to renew before anyone is downed.
/// </para>
/// </summary>
public sealed class DatabaseSeeds(ClusterStore store, NodeIdentity node, IOptions<ClusterOptions> options, TimeProvider time, ILogger<DatabaseSeeds> logger)
{
    // pg_advisory_lock key of the join: "CQjoin" in ASCII, apart from the schema migration's.
    private const long JoinLock = 0x43_51_6A_6F_69_6E;

    // Long enough for a join round on a loaded machine (a second or two here); a dead seed costs this much per look.
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(10);

    private readonly ClusterOptions _options = options.Value;
    private volatile LapsedView? _lapsed;
    private volatile bool _selfLeaving;

    // Addresses whose rows were lapsed (not leaving) in every renewal since the timestamp; cleared when a renewal fails.
    private readonly Dictionary<string, long> _cutOffSince = new(StringComparer.Ordinal);

    /// <summary>How long a member's row must stay lapsed, while this member renews its own, before this member downs it: two renewals of its.</summary>
    public TimeSpan CutOffConfirmation => _options.RenewInterval * 2;

    /// <summary>
    /// The node ids whose rows have all lapsed, as of this node's last renewal: members that cannot reach the database
    /// (they stopped renewing) or that are leaving. A member that has not written its row yet is not among them. Null
    /// while unknown (not read yet, or this node's own view is older than the TTL).
    /// <para>
    /// Once this member is leaving it counts itself among them, view or no view. It has stopped renewing, so its view
    /// no longer shows its own row's lapse; and while it still runs the shard coordinator, its rebalances would
    /// otherwise keep choosing it, and move the shards it just handed off away from their new owners again, only to
    /// place them back there (Akka rebalances toward a member whose region is shutting down, then allocates elsewhere).
    /// </para>
    /// </summary>
    public IReadOnlySet<string>? LapsedNodes
    {
        get
        {
            var view = _lapsed is { } read && time.GetElapsedTime(read.ReadAt) < _options.LeaseTtl ? read.Nodes : null;
            if (!_selfLeaving || view?.Contains(node.Id) == true)
            {
                return view;
            }

            return new HashSet<string>(view ?? Enumerable.Empty<string>(), StringComparer.Ordinal) { node.Id };
        }
    }

    /// <summary>
    /// Joins (or forms) the cluster when <paramref name="join"/> (else Akka joins by itself: seed nodes, Cluster
    /// Bootstrap), then keeps this member's address live, once it is Up, until <paramref name="stop"/>.
    /// </summary>
    public async Task RunAsync(Akka.Cluster.Cluster cluster, bool join, CancellationToken stop)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        var self = cluster.SelfAddress.ToString();
        if (join)
        {
            await JoinAsync(cluster, self, up.Task, stop);
        }
        else
        {
            try
            {
                await up.Task.WaitAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.RenewInterval, time, stop);
                var renewal = await RenewAsync(self, stop);
                DownCutOff(cluster, renewal.CutOffAddresses);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Only joiners read the row; a member whose row lapses stays a member (until the others down it).
                _cutOffSince.Clear();
                Log.SeedRenewalFailed(logger, ex);
            }
        }
    }

    /// <summary>This member is leaving: joiners should not pick its address any more.</summary>
    public Task ForgetAsync(Address self, CancellationToken cancellationToken)
    {
        _selfLeaving = true;
        return store.RemoveSeedAsync(self.ToString(), cancellationToken);
    }

    private async Task JoinAsync(Akka.Cluster.Cluster cluster, string self, Task up, CancellationToken stop)
    {
        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.ControlSource.OpenConnectionAsync(stop);
                await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({JoinLock});", connection))
                {
                    await take.ExecuteNonQueryAsync(stop);
                }

                // The lock is the connection's: it goes with it, whatever happens below.
                var seeds = await ClusterStore.LiveSeedsAsync(connection, self, stop);
                Log.JoiningThroughDatabase(logger, node.Id, seeds.Count);
                if (seeds.Count == 0)
                {
                    cluster.Join(cluster.SelfAddress);
                }
                else
                {
                    cluster.JoinSeedNodes(seeds.Select(Address.Parse));
                }

                try
                {
                    await up.WaitAsync(JoinTimeout, time, stop);
                }
                catch (TimeoutException)
                {
                    Log.JoinTimedOut(logger, JoinTimeout);
                    continue;
                }

                await RenewAsync(self, stop);
                return;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(5_000, 200 * Math.Pow(2, failures++)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.JoinFailed(logger, delay, ex);
                await Task.Delay(delay, time, stop).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>
    /// Renews this member's row and keeps the lapsed members it read, with when. Bounded by two intervals, however the
    /// network behaves: a renewal stuck on a silent connection fails, and the next one tries afresh.
    /// </summary>
    private async Task<SeedRenewal> RenewAsync(string self, CancellationToken stop)
    {
        var readAt = time.GetTimestamp();
        var renewal = await BoundedStatement.RunAsync(
            token => store.RenewSeedAsync(self, node.Id, _options.LeaseTtl, token), _options.RenewInterval * 2, time, stop);
        _lapsed = new LapsedView(renewal.LapsedNodes, readAt);
        return renewal;
    }

    /// <summary>Downs the members whose rows have stayed lapsed, without leaving, for <see cref="CutOffConfirmation"/> of this member's renewals.</summary>
    private void DownCutOff(Akka.Cluster.Cluster cluster, IReadOnlySet<string> cutOff)
    {
        var now = time.GetTimestamp();
        foreach (var gone in _cutOffSince.Keys.Where(a => !cutOff.Contains(a)).ToList())
        {
            _cutOffSince.Remove(gone);
        }

        foreach (var address in cutOff)
        {
            var since = _cutOffSince.TryAdd(address, now) ? now : _cutOffSince[address];
            if (time.GetElapsedTime(since, now) < CutOffConfirmation)
            {
                continue;
            }

            var member = cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == address);
            if (member is null || member.Address == cluster.SelfAddress)
            {
                continue;
            }

            if (member.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
            {
                Log.DowningCutOffMember(logger, address, time.GetElapsedTime(since, now));
                cluster.Down(member.Address);
            }
            else if (member.Status == MemberStatus.Down && cluster.System.Provider is Akka.Remote.RemoteActorRefProvider remoting)
            {
                // Still a member a renewal after it was downed: Akka removes a downed member only once it is unreachable,
                // and this one still answers heartbeats while its shutdown waits on the database. Quarantined (as Akka
                // does to every member it removes), it is unreachable at once, and its shards move.
                Log.QuarantiningCutOffMember(logger, address);
                remoting.Quarantine(member.Address, member.UniqueAddress.Uid);
            }
        }
    }

    private sealed record LapsedView(IReadOnlySet<string> Nodes, long ReadAt);
}
