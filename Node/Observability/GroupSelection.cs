using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Observability;

/// <summary>One group as /metrics shows it: its backlog, how long its oldest ready message has waited, whether it is paused.</summary>
internal readonly record struct GroupBacklog(string Id, long Pending, double OldestAgeSeconds, bool Paused);

/// <summary>
/// Which groups /metrics names, chosen once per scrape. Every group while there are at most the limit; beyond it, the
/// limit's worth with the largest backlogs and the rest summed as one aggregate. The backlog decides because a queue's
/// trouble shows there first; among equal backlogs a group that did something on this node goes first (its counters
/// keep their series while it works), then the smaller id, so idle groups do not trade places between scrapes.
/// </summary>
internal sealed record GroupSelection(
    IReadOnlyList<GroupBacklog> Shown,
    IReadOnlySet<string> ShownIds,
    int Hidden,
    long HiddenPending,
    double HiddenOldestAgeSeconds)
{
    /// <summary>The label value the aggregate is exported under: parentheses are not allowed in a group id, so it is never one.</summary>
    public const string Other = "(other)";

    public static GroupSelection Empty { get; } = new([], new HashSet<string>(), 0, 0, 0);

    /// <summary>Some groups are summed under (other) rather than shown by name.</summary>
    public bool Bounded => Hidden > 0;

    public static GroupSelection Choose(
        IReadOnlyCollection<GroupSettings> groups, IReadOnlyDictionary<string, QueueDepth> depths, int max, DateTimeOffset now, Func<string, bool>? hadEvents = null)
    {
        GroupBacklog Backlog(GroupSettings group) =>
            depths.TryGetValue(group.Id, out var depth)
                ? new GroupBacklog(group.Id, depth.Pending, Age(depth, now), group.PausedAt is not null)
                : new GroupBacklog(group.Id, 0, 0, group.PausedAt is not null);

        if (groups.Count <= max)
        {
            var all = groups.Select(Backlog).ToList();
            return new GroupSelection(all, all.Select(g => g.Id).ToHashSet(StringComparer.Ordinal), 0, 0, 0);
        }

        // A heap of the kept groups with the lowest-ranked on top: one pass, O(groups × log max), no full sort of 100,000.
        var kept = new PriorityQueue<GroupSettings, (long Pending, bool Active, string Id)>(max + 1, LowestRankFirst.Instance);
        foreach (var group in groups)
        {
            var rank = (depths.TryGetValue(group.Id, out var depth) ? depth.Pending : 0, hadEvents?.Invoke(group.Id) ?? false, group.Id);
            if (kept.Count < max)
            {
                kept.Enqueue(group, rank);
            }
            else if (kept.TryPeek(out _, out var lowest) && LowestRankFirst.Instance.Compare(rank, lowest) > 0)
            {
                kept.EnqueueDequeue(group, rank);
            }
        }

        var shown = new List<GroupBacklog>(kept.Count);
        var ids = new HashSet<string>(kept.Count, StringComparer.Ordinal);
        while (kept.TryDequeue(out var group, out _))
        {
            shown.Add(Backlog(group));
            ids.Add(group.Id);
        }

        long hiddenPending = 0;
        double hiddenOldest = 0;
        foreach (var (id, depth) in depths)
        {
            if (!ids.Contains(id))
            {
                hiddenPending += depth.Pending;
                hiddenOldest = Math.Max(hiddenOldest, Age(depth, now));
            }
        }

        return new GroupSelection(shown, ids, groups.Count - shown.Count, hiddenPending, hiddenOldest);
    }

    private static double Age(QueueDepth depth, DateTimeOffset now) =>
        depth.OldestReadySince is { } since && since < now ? (now - since).TotalSeconds : 0;

    /// <summary>Orders ranks lowest first: the smaller backlog, then no events, then the later id.</summary>
    private sealed class LowestRankFirst : IComparer<(long Pending, bool Active, string Id)>
    {
        public static LowestRankFirst Instance { get; } = new();

        public int Compare((long Pending, bool Active, string Id) x, (long Pending, bool Active, string Id) y) =>
            x.Pending != y.Pending ? x.Pending.CompareTo(y.Pending)
            : x.Active != y.Active ? x.Active.CompareTo(y.Active)
            : string.CompareOrdinal(y.Id, x.Id);
    }
}
