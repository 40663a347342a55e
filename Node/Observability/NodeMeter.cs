using System.Diagnostics.Metrics;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// The node's instruments, all on one <see cref="Meter"/> named ClusterQueue, that OpenTelemetry exports (to /metrics,
/// and by OTLP when configured). Everything is observed when an exporter collects, from <see cref="NodeMetrics"/>'s
/// counters and from the backlog <see cref="RefreshAsync"/> read last, so nothing is counted twice and a group that is
/// no longer shown (deleted, or out of the bounded set) is simply not observed any more, which ends its series.
/// <para>
/// The exporter keeps a slot per label value it has ever seen on an instrument and frees none, so groups coming and
/// going would fill any fixed number of slots. The meter is therefore rebuilt, with empty slots, before a scrape would
/// show more distinct groups than it has room for; the values come from <see cref="NodeMetrics"/>, so nothing resets.
/// </para>
/// </summary>
public sealed class NodeMeter : IDisposable
{
    public const string Name = "ClusterQueue";

    /// <summary>The instruments with a group label, whose label values the bound applies to.</summary>
    internal static readonly IReadOnlySet<string> PerGroupInstruments = new HashSet<string>(StringComparer.Ordinal)
    {
        "clusterqueue.ingested", "clusterqueue.duplicates", "clusterqueue.delivered", "clusterqueue.failed", "clusterqueue.dead",
        "clusterqueue.throttled", "clusterqueue.queue_depth", "clusterqueue.oldest_message_age", "clusterqueue.effective_rate",
        "clusterqueue.group_paused",
    };

    /// <summary>Seconds, from a fast local call to a slow target near the default 30 s handler timeout and beyond.</summary>
    private static readonly double[] HandlerBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private readonly NodeMetrics _metrics;
    private readonly IMessageQueue _queue;
    private readonly GroupRegistry _registry;
    private readonly GroupDispatcher _dispatcher;
    private readonly ShardOwnership _ownership;
    private readonly ClusterMembership _membership;
    private readonly NodeReadiness _readiness;
    private readonly IMeterFactory _factory;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeMeter> _logger;
    private readonly int _maxGroups;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly HashSet<string> _labels = new(StringComparer.Ordinal);
    private volatile GroupSelection _selection = GroupSelection.Empty;
    private Meter _meter;

    public NodeMeter(
        NodeMetrics metrics,
        IMessageQueue queue,
        GroupRegistry registry,
        GroupDispatcher dispatcher,
        ShardOwnership ownership,
        ClusterMembership membership,
        NodeReadiness readiness,
        IMeterFactory factory,
        IOptions<ObservabilityOptions> options,
        TimeProvider time,
        ILogger<NodeMeter> logger)
    {
        _metrics = metrics;
        _queue = queue;
        _registry = registry;
        _dispatcher = dispatcher;
        _ownership = ownership;
        _membership = membership;
        _readiness = readiness;
        _factory = factory;
        _time = time;
        _logger = logger;
        _maxGroups = options.Value.MaxGroupSeries;
        _meter = Create();
    }

    /// <summary>Label values a per-group instrument has room for: every shown group and (other), twice over, so rebuilds are rare.</summary>
    public static int CardinalityLimit(int maxGroupSeries) => 2 * (maxGroupSeries + 1);

    /// <summary>Times the meter was rebuilt to free its label slots; for the tests and the log.</summary>
    internal int Rebuilds { get; private set; }

    internal GroupSelection Selection => _selection;

    /// <summary>
    /// Reads every group's backlog and chooses the groups the next collection shows. A store that cannot be read is
    /// logged and the last choice kept: the rest of the scrape (readiness among it) matters most exactly then.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refreshing.WaitAsync(cancellationToken);
        try
        {
            var depths = await _queue.GetDepthsAsync(cancellationToken);
            var selection = GroupSelection.Choose(_registry.All, depths, _maxGroups, _time.GetUtcNow(), _metrics.HadEvents);
            var labels = selection.Shown.Select(g => g.Id).Append(GroupSelection.Other).ToList();
            var limit = CardinalityLimit(_maxGroups);
            if (_labels.Count + labels.Count(l => !_labels.Contains(l)) > limit)
            {
                // Disposed first: a new instrument of the same name joins a live old one instead of starting afresh.
                Log.MeterRebuilt(_logger, _labels.Count, limit);
                _meter.Dispose();
                _labels.Clear();
                _meter = Create();
                Rebuilds++;
            }

            _labels.UnionWith(labels);
            _metrics.Show(selection.Bounded ? selection.ShownIds : null);
            _selection = selection;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.BacklogReadFailed(_logger, ex);
        }
        finally
        {
            _refreshing.Release();
        }
    }

    public void Dispose()
    {
        _meter.Dispose();
        _refreshing.Dispose();
    }

    /// <summary>
    /// Marked with this node's meter factory as its scope, by which this node's provider tells it from another node's
    /// in the same process (the tests run several; in production a node is alone in its process). Not created by the
    /// factory itself, which would keep it for the process's life.
    /// </summary>
    private Meter Create()
    {
        var meter = new Meter(new MeterOptions(Name) { Scope = _factory });
        GroupCounter(meter, "clusterqueue.ingested", "Messages made durable by ingress.", Observability.GroupCounter.Ingested);
        GroupCounter(meter, "clusterqueue.duplicates", "Ingress requests answered with an earlier message's id.", Observability.GroupCounter.Duplicates);
        GroupCounter(meter, "clusterqueue.delivered", "Messages their handler completed.", Observability.GroupCounter.Delivered);
        GroupCounter(meter, "clusterqueue.failed", "Failed handler attempts.", Observability.GroupCounter.Failed);
        GroupCounter(meter, "clusterqueue.dead", "Messages moved to the dead-letter queue.", Observability.GroupCounter.Dead);
        GroupCounter(meter, "clusterqueue.throttled", "Attempts answered 429/503 with Retry-After, pausing the group.", Observability.GroupCounter.Throttled);
        meter.CreateObservableGauge("clusterqueue.queue_depth", QueueDepths, description: "Pending messages (queued, in backoff or in flight) per group.");
        meter.CreateObservableGauge(
            "clusterqueue.oldest_message_age",
            OldestAges,
            unit: "s",
            description: "How long each group's longest-waiting ready message has waited since it became due (ingested, its delay or retry backoff over); 0 when none waits.");

        // Only the lowered ones: an absent series means the group runs at its configured rate.
        meter.CreateObservableGauge("clusterqueue.effective_rate", EffectiveRates, description: "A group's rate lowered by adaptive back-pressure (429/503 from its target), messages per second.");

        // Only the paused ones: with thousands of groups a series each would be mostly zeros.
        meter.CreateObservableGauge("clusterqueue.group_paused", Paused, description: "1 for each group an operator paused.");
        meter.CreateObservableCounter("clusterqueue.ingress_rejected", Rejected, description: "Ingress requests refused, by reason.");
        meter.CreateObservableGauge("clusterqueue.groups", () => _registry.Count, description: "Defined groups.");
        meter.CreateObservableGauge(
            "clusterqueue.groups_in_other",
            () => _selection.Hidden,
            description: "Groups summed under group=\"(other)\" because there are more than Observability:MaxGroupSeries.");
        meter.CreateObservableGauge("clusterqueue.active_actors", () => _dispatcher.ActiveActors, description: "Groups with a running actor on this node.");
        meter.CreateObservableGauge("clusterqueue.handler_calls_in_flight", () => _dispatcher.CallSlots.InUse, description: "Handler calls in flight on this node, against Processing:MaxCallsInFlight.");
        if (_ownership.IsClustered)
        {
            // Summed over the nodes this is the shard count; a sum below it for longer than a lease TTL means shards nobody runs.
            meter.CreateObservableGauge("clusterqueue.shards_held", () => _ownership.Held.Count, description: "Shards whose lease this node holds.");
        }

        meter.CreateObservableGauge("clusterqueue.cluster_members", () => _membership.UpMembers, description: "Akka.Cluster members Up, as this node sees them (1 for a node alone).");
        meter.CreateObservableGauge(
            "clusterqueue.cluster_unreachable_members",
            () => _membership.UnreachableMembers,
            description: "Akka.Cluster members some member's failure detector marks unreachable; above 0 for long means a crashed or cut-off node.");
        meter.CreateObservableGauge("clusterqueue.ready", () => _readiness.IsReady ? 1 : 0, description: "1 when this node takes traffic (recovered, cluster member Up, joined, not draining, store writable).");
        meter.CreateObservableGauge("clusterqueue.process_working_set", () => Environment.WorkingSet, unit: "By", description: "Resident memory of the node process.");
        meter.CreateObservableGauge("clusterqueue.gc_heap", () => GC.GetTotalMemory(false), unit: "By", description: "Managed heap size.");
        _metrics.UseHandlerDuration(meter.CreateHistogram(
            "clusterqueue.handler.duration",
            unit: "s",
            description: "Handler calls (one attempt at one message) by outcome: delivered, continued, failed, throttled, dead or cancelled.",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HandlerBuckets }));
        return meter;
    }

    private void GroupCounter(Meter meter, string name, string description, int counter) =>
        meter.CreateObservableCounter(name, () => CounterValues(counter), description: description);

    // A group's series appears once its counter leaves zero (Prometheus reads an absent series as no events yet): with
    // thousands of groups that each saw traffic, most of the six counters stay zero.
    private IEnumerable<Measurement<long>> CounterValues(int counter)
    {
        var selection = _selection;
        foreach (var group in selection.Shown)
        {
            if (_metrics.Read(group.Id, counter) is var value and not 0)
            {
                yield return new Measurement<long>(value, Group(group.Id));
            }
        }

        if (selection.Bounded && _metrics.ReadOther(counter) is var other and not 0)
        {
            yield return new Measurement<long>(other, Group(GroupSelection.Other));
        }
    }

    private IEnumerable<Measurement<long>> QueueDepths()
    {
        var selection = _selection;
        foreach (var group in selection.Shown)
        {
            yield return new Measurement<long>(group.Pending, Group(group.Id));
        }

        if (selection.Bounded)
        {
            yield return new Measurement<long>(selection.HiddenPending, Group(GroupSelection.Other));
        }
    }

    private IEnumerable<Measurement<double>> OldestAges()
    {
        var selection = _selection;
        foreach (var group in selection.Shown)
        {
            yield return new Measurement<double>(group.OldestAgeSeconds, Group(group.Id));
        }

        if (selection.Bounded)
        {
            yield return new Measurement<double>(selection.HiddenOldestAgeSeconds, Group(GroupSelection.Other));
        }
    }

    private IEnumerable<Measurement<double>> EffectiveRates()
    {
        var selection = _selection;
        foreach (var (group, rate) in _metrics.LoweredRates)
        {
            if (selection.ShownIds.Contains(group))
            {
                yield return new Measurement<double>(rate, Group(group));
            }
        }
    }

    private IEnumerable<Measurement<int>> Paused()
    {
        foreach (var group in _selection.Shown)
        {
            if (group.Paused)
            {
                yield return new Measurement<int>(1, Group(group.Id));
            }
        }
    }

    private IEnumerable<Measurement<long>> Rejected()
    {
        foreach (var (reason, count) in _metrics.RejectedByReason)
        {
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("reason", reason));
        }
    }

    private static KeyValuePair<string, object?> Group(string id) => new("group", id);
}
