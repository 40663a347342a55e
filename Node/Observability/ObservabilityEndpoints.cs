using System.Diagnostics;
using System.Runtime;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ClusterQueue.Node.Observability;

public static class ObservabilityEndpoints
{
    public static IServiceCollection AddObservability(this IServiceCollection services)
    {
        services.AddSingleton<NodeMetrics>();
        services.AddSingleton<NodeReadiness>();
        return services;
    }

    public static IEndpointRouteBuilder MapObservability(this IEndpointRouteBuilder endpoints, RouteGroupBuilder admin)
    {
        endpoints.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithTags("Health").WithSummary("Liveness: the process is serving requests.");
        endpoints.MapGet("/readyz", Ready).WithTags("Health").WithSummary("Readiness: recovered, joined (in a cluster), not draining, and the store takes writes.");
        endpoints.MapGet("/metrics", MetricsAsync).WithTags("Health").WithSummary("Prometheus text format.").Produces<string>(contentType: PrometheusText.ContentType);
        admin.MapGet("/groups/{id}/stats", StatsAsync).WithTags("Groups").WithSummary("Queue depth, in flight, delivered, failed, dead, throttled and current tokens.");
        admin.MapPost("/debug/gc", CollectGarbage).WithTags("Health").WithSummary("Forces a full compacting collection and answers the live managed heap, for memory measurements.");
        return endpoints;
    }

    private static Results<Ok<object>, ProblemHttpResult> Ready(NodeReadiness readiness) =>
        readiness.IsReady
            ? TypedResults.Ok<object>(new { status = "ready" })
            : TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not ready", detail: readiness.NotReadyReason ?? "The node is not ready.");

    /// <summary>
    /// The gauge's heap figure counts garbage not yet collected, up to a whole generation-0 budget (megabytes under the
    /// server GC), which hides a per-group cost of hundreds of bytes; only a forced full collection gives the live size.
    /// It pauses the process, hence a POST behind the admin guard rather than a gauge.
    /// </summary>
    private static Ok<object> CollectGarbage()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var process = Process.GetCurrentProcess();
        return TypedResults.Ok<object>(new { heapBytes = GC.GetTotalMemory(false), workingSetBytes = process.WorkingSet64 });
    }

    private static async Task<Results<Ok<GroupStats>, ProblemHttpResult>> StatsAsync(string id, GroupRegistry registry, IMessageQueue queue, GroupDispatcher dispatcher, CancellationToken cancellationToken)
    {
        if (!registry.TryGet(id, out var settings) || await queue.GetCountsAsync(id, cancellationToken) is not { } counts)
        {
            return GroupProblems.NotFound(id);
        }

        var snapshot = dispatcher.InspectAsync(id) is { } inspect ? await inspect.WaitAsync(cancellationToken) : null;
        return TypedResults.Ok(new GroupStats(
            id,
            Math.Max(0, counts.Queued - (snapshot?.InFlight ?? 0)),
            snapshot?.InFlight ?? 0,
            counts.Ingested,
            counts.Delivered,
            counts.Failed,
            counts.Dead,
            counts.Throttled,
            snapshot?.Tokens ?? settings.Burst,
            settings.RatePerSecond,
            snapshot?.PausedUntil,
            settings.PausedAt is not null,
            settings.PausedAt,
            snapshot?.RatePerSecond ?? settings.RatePerSecond));
    }

    private static async Task<IResult> MetricsAsync(
        NodeMetrics metrics, IMessageQueue queue, GroupRegistry registry, GroupDispatcher dispatcher, ShardOwnership ownership, NodeReadiness readiness, CancellationToken cancellationToken)
    {
        var text = new PrometheusText();
        var groups = metrics.Groups.OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        Counter(text, groups, "clusterqueue_ingested_total", "Messages made durable by ingress.", c => Volatile.Read(ref c.Ingested));
        Counter(text, groups, "clusterqueue_duplicates_total", "Ingress requests answered with an earlier message's id.", c => Volatile.Read(ref c.Duplicates));
        Counter(text, groups, "clusterqueue_delivered_total", "Messages their handler completed.", c => Volatile.Read(ref c.Delivered));
        Counter(text, groups, "clusterqueue_failed_total", "Failed handler attempts.", c => Volatile.Read(ref c.Failed));
        Counter(text, groups, "clusterqueue_dead_total", "Messages moved to the dead-letter queue.", c => Volatile.Read(ref c.Dead));
        Counter(text, groups, "clusterqueue_throttled_total", "Attempts answered 429/503 with Retry-After, pausing the group.", c => Volatile.Read(ref c.Throttled));

        text.Metric("clusterqueue_ingress_rejected_total", "counter", "Ingress requests refused, by reason.");
        foreach (var (reason, count) in metrics.RejectedByReason.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            text.Sample("clusterqueue_ingress_rejected_total", count, "reason", reason);
        }

        text.Metric("clusterqueue_queue_depth", "gauge", "Pending messages (queued or in flight) per group.");
        foreach (var (group, depth) in (await queue.GetDepthsAsync(cancellationToken)).OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            text.Sample("clusterqueue_queue_depth", depth, "group", group);
        }

        text.Metric("clusterqueue_groups", "gauge", "Defined groups.");
        text.Sample("clusterqueue_groups", registry.Count);

        // Only the lowered ones: an absent series means the group runs at its configured rate.
        text.Metric("clusterqueue_effective_rate", "gauge", "A group's rate lowered by adaptive back-pressure (429/503 from its target), messages per second.");
        foreach (var (group, rate) in metrics.LoweredRates.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            text.Sample("clusterqueue_effective_rate", rate, "group", group);
        }

        // Only the paused ones: with thousands of groups a series each would be mostly zeros.
        text.Metric("clusterqueue_group_paused", "gauge", "1 for each group an operator paused.");
        foreach (var paused in registry.All.Where(g => g.PausedAt is not null).OrderBy(g => g.Id, StringComparer.Ordinal))
        {
            text.Sample("clusterqueue_group_paused", 1, "group", paused.Id);
        }
        text.Metric("clusterqueue_active_actors", "gauge", "Groups with a running actor on this node.");
        text.Sample("clusterqueue_active_actors", dispatcher.ActiveActors);
        text.Metric("clusterqueue_handler_calls_in_flight", "gauge", "Handler calls in flight on this node, against Processing:MaxCallsInFlight.");
        text.Sample("clusterqueue_handler_calls_in_flight", dispatcher.CallSlots.InUse);
        if (ownership.IsClustered)
        {
            // Summed over the nodes this is the shard count; a sum below it for longer than a lease TTL means shards nobody runs.
            text.Metric("clusterqueue_shards_held", "gauge", "Shards whose lease this node holds.");
            text.Sample("clusterqueue_shards_held", ownership.Held.Count);
        }

        text.Metric("clusterqueue_ready", "gauge", "1 when this node takes traffic (recovered, joined, not draining).");
        text.Sample("clusterqueue_ready", readiness.IsReady ? 1 : 0);
        using var process = Process.GetCurrentProcess();
        text.Metric("clusterqueue_process_working_set_bytes", "gauge", "Resident memory of the node process.");
        text.Sample("clusterqueue_process_working_set_bytes", process.WorkingSet64);
        text.Metric("clusterqueue_gc_heap_bytes", "gauge", "Managed heap size.");
        text.Sample("clusterqueue_gc_heap_bytes", GC.GetTotalMemory(false));
        return Results.Text(text.ToString(), PrometheusText.ContentType);
    }

    private static void Counter(PrometheusText text, List<KeyValuePair<string, NodeMetrics.GroupCounters>> groups, string name, string help, Func<NodeMetrics.GroupCounters, long> read)
    {
        // A group's series appears once its counter leaves zero (Prometheus reads an absent series as no events yet):
        // with thousands of groups that each saw traffic, most of the six counters stay zero, and writing them all
        // made every scrape megabytes long.
        text.Metric(name, "counter", help);
        foreach (var (group, counters) in groups)
        {
            if (read(counters) is var value and not 0)
            {
                text.Sample(name, value, "group", group);
            }
        }
    }
}
