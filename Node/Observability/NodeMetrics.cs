using System.Collections.Concurrent;
using ClusterQueue.Node.Groups;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// Per-group counters since this process started, for /metrics (Prometheus counters may reset on restart; the
/// durable totals are in the stats endpoint). Counters are created on a group's first event, so idle groups cost nothing.
/// </summary>
public sealed class NodeMetrics
{
    private readonly ConcurrentDictionary<string, GroupCounters> _groups = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _lowered = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _rejected = new(StringComparer.Ordinal);

    /// <summary>A deleted group's counters go with it: otherwise every group ever used stays in each scrape for the process's life.</summary>
    public NodeMetrics(GroupRegistry registry) => registry.Changed += change =>
    {
        if (change.Settings is null)
        {
            Forget(change.GroupId);
        }
    };

    public void Ingested(string groupId) => Interlocked.Increment(ref For(groupId).Ingested);

    public void Duplicate(string groupId) => Interlocked.Increment(ref For(groupId).Duplicates);

    public void Delivered(string groupId) => Interlocked.Increment(ref For(groupId).Delivered);

    public void Failed(string groupId) => Interlocked.Increment(ref For(groupId).Failed);

    public void DeadLettered(string groupId) => Interlocked.Increment(ref For(groupId).Dead);

    public void Throttled(string groupId) => Interlocked.Increment(ref For(groupId).Throttled);

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

    internal IEnumerable<KeyValuePair<string, double>> LoweredRates => _lowered;

    public void Forget(string groupId)
    {
        _groups.TryRemove(groupId, out _);
        _lowered.TryRemove(groupId, out _);
    }

    internal IEnumerable<KeyValuePair<string, GroupCounters>> Groups => _groups;

    internal IEnumerable<KeyValuePair<string, long>> RejectedByReason => _rejected;

    private GroupCounters For(string groupId) => _groups.GetOrAdd(groupId, static _ => new GroupCounters());

    internal sealed class GroupCounters
    {
        public long Ingested;
        public long Duplicates;
        public long Delivered;
        public long Failed;
        public long Dead;
        public long Throttled;
    }
}
