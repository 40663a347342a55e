using System.Collections.Concurrent;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Dashboard;

/// <summary>
/// One group in the dashboard's table: its limits next to its limiter's live state. Tokens, InFlight and
/// EffectiveRatePerSecond are null for a group another node of the cluster runs (Here false): only its owner knows them.
/// ThrottledUntil is a pause the target asked for (Retry-After); Paused is an operator's.
/// </summary>
public sealed record GroupRow(
    string Id,
    double RatePerSecond,
    int Burst,
    int MaxConcurrency,
    double? EffectiveRatePerSecond,
    double? Tokens,
    long Backlog,
    double OldestAgeSeconds,
    int? InFlight,
    double DeliveredPerSecond,
    double FailedPerSecond,
    long DeadLetters,
    bool Paused,
    DateTimeOffset? ThrottledUntil,
    bool Here);

/// <summary>A cluster member as the shard leases show it: the shards it holds and how many of their groups have a backlog.</summary>
public sealed record MemberSummary(string NodeId, bool Self, bool Leaving, int Shards, int ActiveGroups);

/// <summary>The serving node's totals; Members lists the cluster (null for a node alone).</summary>
public sealed record NodeSummary(
    string NodeId,
    bool Ready,
    int Groups,
    int PausedGroups,
    long Backlog,
    int CallsInFlight,
    int MaxCallsInFlight,
    int ActiveActors,
    double DeliveredPerSecond,
    double FailedPerSecond,
    long DeadLetters,
    IReadOnlyList<MemberSummary>? Members);

/// <summary>GET /v1/dashboard/groups: the node's totals and one page of the groups that match, in the order asked.</summary>
public sealed record GroupPage(
    DateTimeOffset GeneratedAt,
    NodeSummary Node,
    int Total,
    int Matched,
    int Offset,
    int Limit,
    string Sort,
    string Order,
    IReadOnlyList<GroupRow> Groups);

/// <summary>
/// Every group's row, read at most once per <see cref="DashboardOptions.TableMaxAge"/> however many tabs poll, and
/// sorted once per order asked of that read: with 100,000 groups a read and a sort each cost tens of milliseconds,
/// a page out of a sorted read microseconds. The read is one backlog query, one dead-letter query and the live state of
/// the groups that have an actor (the others are idle: nothing in flight, a full bucket).
/// </summary>
public sealed class GroupTable(
    GroupRegistry registry,
    IMessageQueue queue,
    DashboardQueries queries,
    GroupDispatcher dispatcher,
    GroupHistory history,
    ShardOwnership ownership,
    NodeIdentity identity,
    NodeReadiness readiness,
    ClusterView cluster,
    IOptions<DashboardOptions> options,
    TimeProvider time)
{
    /// <summary>The columns a page can be sorted by, as the query names them.</summary>
    public static readonly IReadOnlyDictionary<string, Func<GroupRow, double>> SortKeys = new Dictionary<string, Func<GroupRow, double>>(StringComparer.Ordinal)
    {
        ["id"] = _ => 0,
        ["rate"] = row => row.RatePerSecond,
        ["burst"] = row => row.Burst,
        ["concurrency"] = row => row.MaxConcurrency,
        ["effectiveRate"] = row => row.EffectiveRatePerSecond ?? -1,
        ["tokens"] = row => row.Tokens ?? -1,
        ["backlog"] = row => row.Backlog,
        ["oldestAge"] = row => row.OldestAgeSeconds,
        ["inFlight"] = row => row.InFlight ?? -1,
        ["delivered"] = row => row.DeliveredPerSecond,
        ["failed"] = row => row.FailedPerSecond,
        ["deadLetters"] = row => row.DeadLetters,
        ["paused"] = row => row.Paused ? 1 : 0,
    };

    private readonly SemaphoreSlim _reading = new(1, 1);
    private volatile Snapshot? _snapshot;

    /// <summary>One page: groups whose id contains <paramref name="search"/> (any case), sorted, from <paramref name="offset"/>.</summary>
    public async Task<GroupPage> PageAsync(string? search, string sort, bool descending, int offset, int limit, CancellationToken cancellationToken)
    {
        var snapshot = await CurrentAsync(cancellationToken);
        var sorted = snapshot.Sorted(sort, descending);
        IReadOnlyList<GroupRow> matching = string.IsNullOrEmpty(search)
            ? sorted
            : [.. sorted.Where(row => row.Id.Contains(search, StringComparison.OrdinalIgnoreCase))];
        var page = matching.Skip(offset).Take(limit).ToList();
        return new GroupPage(snapshot.At, snapshot.Node, snapshot.Rows.Length, matching.Count, offset, limit, sort, descending ? "desc" : "asc", page);
    }

    private async Task<Snapshot> CurrentAsync(CancellationToken cancellationToken)
    {
        if (_snapshot is { } fresh && time.GetUtcNow() - fresh.At < options.Value.TableMaxAge)
        {
            return fresh;
        }

        await _reading.WaitAsync(cancellationToken);
        try
        {
            // Another request may have read it while this one waited.
            if (_snapshot is { } read && time.GetUtcNow() - read.At < options.Value.TableMaxAge)
            {
                return read;
            }

            var snapshot = await ReadAsync(cancellationToken);
            _snapshot = snapshot;
            return snapshot;
        }
        finally
        {
            _reading.Release();
        }
    }

    private async Task<Snapshot> ReadAsync(CancellationToken cancellationToken)
    {
        var depths = await queue.GetDepthsAsync(cancellationToken);
        var dead = queries.DeadLetterCounts();
        var live = await dispatcher.InspectAllAsync(TimeSpan.FromSeconds(2));
        var now = time.GetUtcNow();
        var groups = registry.All;
        var rows = new GroupRow[groups.Count];
        var i = 0;
        foreach (var group in groups)
        {
            depths.TryGetValue(group.Id, out var depth);
            live.TryGetValue(group.Id, out var actor);
            var here = ownership.Owns(group.Id);
            var rates = history.RatesOf(group.Id);
            rows[i++] = new GroupRow(
                group.Id,
                group.RatePerSecond,
                group.Burst,
                group.MaxConcurrency,
                here ? actor?.RatePerSecond ?? group.RatePerSecond : null,
                here ? actor?.Tokens ?? group.Burst : null,
                Math.Max(0, depth.Pending - (actor?.InFlight ?? 0)),
                depth.OldestReadySince is { } since ? Math.Max(0, (now - since).TotalSeconds) : 0,
                here ? actor?.InFlight ?? 0 : null,
                rates.DeliveredPerSecond,
                rates.FailedPerSecond,
                dead.GetValueOrDefault(group.Id),
                group.PausedAt is not null,
                actor?.PausedUntil is { } until && until > now ? until : null,
                here);
        }

        var node = new NodeSummary(
            identity.Id,
            readiness.IsReady,
            rows.Length,
            rows.Count(row => row.Paused),
            rows.Sum(row => row.Backlog),
            dispatcher.CallSlots.InUse,
            dispatcher.Options.MaxCallsInFlight,
            live.Count,
            rows.Sum(row => row.DeliveredPerSecond),
            rows.Sum(row => row.FailedPerSecond),
            dead.Values.Sum(),
            ownership.IsClustered ? await cluster.MembersAsync(depths.Keys, cancellationToken) : null);
        return new Snapshot(now, rows, node);
    }

    private sealed class Snapshot(DateTimeOffset at, GroupRow[] rows, NodeSummary node)
    {
        private readonly ConcurrentDictionary<(string Sort, bool Descending), GroupRow[]> _sorted = new();

        public DateTimeOffset At { get; } = at;

        public GroupRow[] Rows { get; } = rows;

        public NodeSummary Node { get; } = node;

        /// <summary>The rows in the order asked, ties by id (so a page is stable between polls).</summary>
        public GroupRow[] Sorted(string sort, bool descending) => _sorted.GetOrAdd((sort, descending), key =>
        {
            var value = SortKeys[key.Sort];
            var sorted = (GroupRow[])Rows.Clone();
            var sign = key.Descending ? -1 : 1;
            Array.Sort(sorted, (a, b) =>
            {
                var byValue = value(a).CompareTo(value(b));
                return sign * (byValue != 0 ? byValue : string.CompareOrdinal(a.Id, b.Id));
            });
            return sorted;
        });
    }
}
