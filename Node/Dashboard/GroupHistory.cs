using System.Collections.Concurrent;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Dashboard;

/// <summary>One point of a group's chart: rates over the interval before <see cref="At"/>, levels at <see cref="At"/>.</summary>
public sealed record HistoryPoint(
    DateTimeOffset At,
    double DeliveredPerSecond,
    double FailedPerSecond,
    double ThrottledPerSecond,
    long Backlog,
    int InFlight,
    double RatePerSecond,
    double EffectiveRatePerSecond,
    int MaxConcurrency);

/// <summary>The delivered and failed calls per second of one group over the last sample interval.</summary>
public readonly record struct GroupRates(double DeliveredPerSecond, double FailedPerSecond);

/// <summary>
/// The short history behind the group page's charts, kept in memory: every <see cref="DashboardOptions.SampleInterval"/>
/// it reads the backlog (one query for all groups), the actors' live state and this node's counters, and appends a
/// point to the ring of each busy group. Only groups that did something have a ring (an idle group costs nothing, as
/// everywhere in the node), at most <see cref="DashboardOptions.MaxHistoryGroups"/>, and a ring whose whole window is
/// idle is dropped. Counters are this node's (a cluster's owner of a group is the node that delivers it), so a group
/// is charted on the node that runs it. Lost on restart, like the counters it reads.
/// </summary>
public sealed class GroupHistory(
    GroupRegistry registry,
    IMessageQueue queue,
    GroupDispatcher dispatcher,
    NodeMetrics metrics,
    IOptions<DashboardOptions> options,
    TimeProvider time,
    ILogger<GroupHistory> logger) : BackgroundService
{
    private readonly DashboardOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, Ring> _rings = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, GroupRates> _rates = new(StringComparer.Ordinal);

    // Read and written by the sampling loop only.
    private readonly Dictionary<string, (long Delivered, long Failed, long Throttled)> _last = new(StringComparer.Ordinal);
    private DateTimeOffset? _lastAt;

    private int Capacity => Math.Max(2, (int)Math.Ceiling(_options.HistoryWindow / _options.SampleInterval));

    /// <summary>The group's rates over the last interval; zero for a group that did nothing lately.</summary>
    public GroupRates RatesOf(string groupId) => _rates.GetValueOrDefault(groupId);

    /// <summary>The group's points, oldest first; empty when it has none (idle for a whole window, or past the limit).</summary>
    public IReadOnlyList<HistoryPoint> PointsOf(string groupId) => _rings.TryGetValue(groupId, out var ring) ? ring.Read() : [];

    /// <summary>Groups with a history now; for the tests and the limit.</summary>
    internal int Tracked => _rings.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.SampleInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SampleAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A store that cannot be read leaves a gap in the charts, nothing more; the next tick tries again.
                    Log.SampleFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Takes one sample of every busy group.</summary>
    internal async Task SampleAsync(CancellationToken cancellationToken)
    {
        var depths = await queue.GetDepthsAsync(cancellationToken);
        var live = await dispatcher.InspectAllAsync(TimeSpan.FromSeconds(2));
        var now = time.GetUtcNow();
        var seconds = _lastAt is { } last ? Math.Max(0.001, (now - last).TotalSeconds) : 0;
        _lastAt = now;

        var candidates = new HashSet<string>(metrics.GroupsWithEvents, StringComparer.Ordinal);
        candidates.UnionWith(depths.Keys);
        candidates.UnionWith(live.Keys);
        candidates.UnionWith(_rings.Keys);
        foreach (var id in candidates)
        {
            if (!registry.TryGet(id, out var settings))
            {
                Forget(id);
                continue;
            }

            var counts = (metrics.Read(id, GroupCounter.Delivered), metrics.Read(id, GroupCounter.Failed), metrics.Read(id, GroupCounter.Throttled));

            // A group first seen now had no counters at the last tick: what it counted since happened in this interval.
            var before = _last.GetValueOrDefault(id);
            _last[id] = counts;
            double PerSecond(long now, long then) => seconds == 0 ? 0 : Math.Max(0, now - then) / seconds;
            var delivered = PerSecond(counts.Item1, before.Delivered);
            var failed = PerSecond(counts.Item2, before.Failed);
            var throttled = PerSecond(counts.Item3, before.Throttled);
            if (delivered > 0 || failed > 0)
            {
                _rates[id] = new GroupRates(delivered, failed);
            }
            else
            {
                _rates.TryRemove(id, out _);
            }

            live.TryGetValue(id, out var actor);
            var backlog = depths.TryGetValue(id, out var depth) ? Math.Max(0, depth.Pending - (actor?.InFlight ?? 0)) : 0;
            var point = new HistoryPoint(
                now, delivered, failed, throttled, backlog, actor?.InFlight ?? 0, settings.RatePerSecond, actor?.RatePerSecond ?? settings.RatePerSecond, settings.MaxConcurrency);
            var busy = delivered > 0 || failed > 0 || throttled > 0 || backlog > 0 || point.InFlight > 0;
            if (_rings.TryGetValue(id, out var ring))
            {
                ring.Add(point, busy);
                if (ring.IdleWholeWindow)
                {
                    _rings.TryRemove(id, out _);
                }
            }
            else if (busy && _rings.Count < _options.MaxHistoryGroups)
            {
                ring = new Ring(Capacity);
                ring.Add(point, busy);
                _rings[id] = ring;
            }
        }
    }

    private void Forget(string id)
    {
        _rings.TryRemove(id, out _);
        _rates.TryRemove(id, out _);
        _last.Remove(id);
    }

    /// <summary>A fixed number of points, the oldest overwritten; read by request threads while the loop writes.</summary>
    private sealed class Ring(int capacity)
    {
        private readonly HistoryPoint[] _points = new HistoryPoint[capacity];
        private readonly Lock _gate = new();
        private int _next;
        private int _count;
        private int _idleRun;

        /// <summary>Every point in the ring is idle: the group can go without losing anything worth drawing.</summary>
        public bool IdleWholeWindow => _idleRun >= _points.Length;

        public void Add(HistoryPoint point, bool busy)
        {
            lock (_gate)
            {
                _points[_next] = point;
                _next = (_next + 1) % _points.Length;
                _count = Math.Min(_count + 1, _points.Length);
                _idleRun = busy ? 0 : _idleRun + 1;
            }
        }

        public IReadOnlyList<HistoryPoint> Read()
        {
            lock (_gate)
            {
                var points = new HistoryPoint[_count];
                for (var i = 0; i < _count; i++)
                {
                    points[i] = _points[(_next - _count + i + _points.Length) % _points.Length];
                }

                return points;
            }
        }
    }
}
