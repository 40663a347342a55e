using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ClusterQueue.Node.Groups;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// What happened on this node since its process started, per group, as ingress and the actors report it: the counters
/// /metrics exports (Prometheus counters may reset on restart; the durable totals are in the stats endpoint). A
/// group's counters are created on its first event, so idle groups cost nothing. <see cref="NodeMeter"/> reads them.
/// </summary>
public sealed class NodeMetrics
{
    private readonly ConcurrentDictionary<string, long[]> _groups = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _lowered = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _rejected = new(StringComparer.Ordinal);
    private readonly long[] _other = new long[GroupCounter.Count];
    private volatile IReadOnlySet<string>? _shown;
    private bool _chosen;
    private volatile Histogram<double>? _handlerDuration;

    /// <summary>A deleted group's counters go with it: otherwise every group ever used stays in each scrape for the process's life.</summary>
    public NodeMetrics(GroupRegistry registry) => registry.Changed += change =>
    {
        if (change.Settings is null)
        {
            Forget(change.GroupId);
        }
    };

    public void Ingested(string groupId) => Count(groupId, GroupCounter.Ingested);

    public void Duplicate(string groupId) => Count(groupId, GroupCounter.Duplicates);

    public void Delivered(string groupId) => Count(groupId, GroupCounter.Delivered);

    public void Failed(string groupId) => Count(groupId, GroupCounter.Failed);

    public void DeadLettered(string groupId) => Count(groupId, GroupCounter.Dead);

    public void Throttled(string groupId) => Count(groupId, GroupCounter.Throttled);

    /// <summary>Rejections are counted by reason only: unknown group ids must not create label values.</summary>
    public void Rejected(string reason) => _rejected.AddOrUpdate(reason, 1, (_, n) => n + 1);

    /// <summary>A group's effective rate under adaptive back-pressure; only lowered ones are kept (and shown).</summary>
    public void EffectiveRate(string groupId, double effective, double configured)
    {
        if (effective < configured)
        {
            _lowered[groupId] = effective;
        }
        else
        {
            _lowered.TryRemove(groupId, out _);
        }
    }

    /// <summary>One handler call ended: how long it took and how (<see cref="MessageTracing.OutcomeName"/>, or cancelled).</summary>
    public void HandlerCall(TimeSpan duration, string outcome) =>
        _handlerDuration?.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome));

    public void Forget(string groupId)
    {
        _groups.TryRemove(groupId, out _);
        _lowered.TryRemove(groupId, out _);
    }

    internal IEnumerable<KeyValuePair<string, double>> LoweredRates => _lowered;

    internal IEnumerable<KeyValuePair<string, long>> RejectedByReason => _rejected;

    /// <summary>The groups that counted something on this node since its process started (the dashboard's history reads them).</summary>
    internal IEnumerable<string> GroupsWithEvents => _groups.Keys;

    /// <summary>The group counted something on this node since its process started.</summary>
    internal bool HadEvents(string groupId) => _groups.ContainsKey(groupId);

    internal long Read(string groupId, int counter) => _groups.TryGetValue(groupId, out var counts) ? Volatile.Read(ref counts[counter]) : 0;

    /// <summary>Events of groups that were not shown when they happened: the (other) series, which only ever grows.</summary>
    internal long ReadOther(int counter) => Volatile.Read(ref _other[counter]);

    /// <summary>
    /// The groups /metrics shows by name from now on (null: all). An event of any other group also counts under
    /// (other), so a group moving in or out of the shown set never makes a counter go down: a group that appears brings
    /// its total as a new series (rate() counts from its next sample), and one that leaves ends its series.
    /// </summary>
    internal void Show(IReadOnlySet<string>? shown)
    {
        if (!_chosen && shown is not null)
        {
            // The first choice: what hidden groups did before any scrape was shown by no series, so (other) starts with it.
            foreach (var (group, counts) in _groups)
            {
                if (!shown.Contains(group))
                {
                    for (var counter = 0; counter < GroupCounter.Count; counter++)
                    {
                        Interlocked.Add(ref _other[counter], Volatile.Read(ref counts[counter]));
                    }
                }
            }
        }

        _chosen = true;
        _shown = shown;
    }

    internal void UseHandlerDuration(Histogram<double> histogram) => _handlerDuration = histogram;

    private void Count(string groupId, int counter)
    {
        Interlocked.Increment(ref _groups.GetOrAdd(groupId, static _ => new long[GroupCounter.Count])[counter]);
        if (_shown is { } shown && !shown.Contains(groupId))
        {
            Interlocked.Increment(ref _other[counter]);
        }
    }
}

/// <summary>The per-group counters, as indexes into a group's counts.</summary>
internal static class GroupCounter
{
    public const int Ingested = 0;
    public const int Duplicates = 1;
    public const int Delivered = 2;
    public const int Failed = 3;
    public const int Dead = 4;
    public const int Throttled = 5;
    public const int Count = 6;
}
