using System.Net;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Observability;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Observability;

public sealed class ObservabilityEndpointsTests
{
    [Fact]
    public async Task DebugGc_WithAdminToken_ReturnsLiveHeapAndWorkingSet()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PostAsync("/v1/debug/gc", content: null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(body.GetProperty("heapBytes").GetInt64() > 0);
        Assert.True(body.GetProperty("workingSetBytes").GetInt64() > 0);
    }

    [Fact]
    public async Task Metrics_AfterGroupDeleted_NoLongerListsItsCounters()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Held);
        await node.DefineGroupAsync("kept", Held);
        using var ordersPost = await node.Client.PostAsync("/hooks/orders", Json("""{"a":1}"""));
        using var keptPost = await node.Client.PostAsync("/hooks/kept", Json("""{"a":1}"""));
        Assert.Equal(HttpStatusCode.Accepted, ordersPost.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, keptPost.StatusCode);
        Assert.Equal(1, Exposition.Value(await node.Client.GetStringAsync("/metrics"), "clusterqueue_ingested_total", ("group", "orders")));

        using var delete = await node.Client.DeleteAsync("/v1/groups/orders");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var metrics = await node.Client.GetStringAsync("/metrics");
        Assert.DoesNotContain(Exposition.Parse(metrics), s => s.Labels.TryGetValue("group", out var group) && group == "orders");
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_ingested_total", ("group", "kept")));
    }

    [Fact]
    public async Task Metrics_ListAGroupsCounterOnlyOnceItIsAboveZero()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Held);
        using var post = await node.Client.PostAsync("/hooks/orders", Json("""{"a":1}"""));
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);

        var metrics = await node.Client.GetStringAsync("/metrics");

        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_ingested_total", ("group", "orders")));
        Assert.Null(Exposition.Value(metrics, "clusterqueue_dead_total", ("group", "orders")));
        Assert.Null(Exposition.Value(metrics, "clusterqueue_duplicates_total", ("group", "orders")));
    }

    [Fact]
    public async Task Metrics_KeepTheirNamesAndTypes_OnOpenTelemetry()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Held);
        await node.IngestOkAsync("orders", """{"a":1}""");
        using var unknown = await node.Client.PostAsync("/hooks/nobody", Json("{}"));

        var metrics = await node.Client.GetStringAsync("/metrics");

        Assert.Contains("# TYPE clusterqueue_ingested_total counter", metrics, StringComparison.Ordinal);
        Assert.Contains("# TYPE clusterqueue_queue_depth gauge", metrics, StringComparison.Ordinal);
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_queue_depth", ("group", "orders")));
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_ingress_rejected_total", ("reason", "unknown_group")));
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_groups"));
        Assert.Equal(0, Exposition.Value(metrics, "clusterqueue_groups_in_other"));
        Assert.True(Exposition.Value(metrics, "clusterqueue_process_working_set_bytes") > 0);
        Assert.True(Exposition.Value(metrics, "clusterqueue_gc_heap_bytes") > 0);
        Assert.NotNull(Exposition.Value(metrics, "clusterqueue_ready"));

        // The libraries' own instruments come along: the runtime's, ASP.NET Core's and HttpClient's.
        Assert.Contains(Exposition.Parse(metrics), s => s.Name.StartsWith("http_server_request_duration_seconds", StringComparison.Ordinal));
        Assert.Contains(Exposition.Parse(metrics), s => s.Name.StartsWith("process_runtime_dotnet_", StringComparison.Ordinal) || s.Name.StartsWith("dotnet_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Metrics_ShowHowLongTheOldestReadyMessageHasWaited()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("waiting", Held);
        await node.DefineGroupAsync("idle", Held);
        using var pause = await node.Client.PostAsync("/v1/groups/waiting/pause", content: null);
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        await node.IngestOkAsync("waiting", """{"a":1}""");

        var metrics = await Eventually.ReadAsync(
            () => node.Client.GetStringAsync("/metrics"),
            m => Exposition.Value(m, "clusterqueue_oldest_message_age_seconds", ("group", "waiting")) >= 1,
            "the paused group's message a second old");

        Assert.InRange(Exposition.Value(metrics, "clusterqueue_oldest_message_age_seconds", ("group", "waiting"))!.Value, 1, 60);
        Assert.Equal(0, Exposition.Value(metrics, "clusterqueue_oldest_message_age_seconds", ("group", "idle")));
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_group_paused", ("group", "waiting")));
    }

    [Fact]
    public async Task Metrics_BeyondMaxGroupSeries_ShowTheLargestBacklogs_AndSumTheRestUnderOther()
    {
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Observability:MaxGroupSeries"] = "2" });
        foreach (var group in new[] { "a", "b", "c", "d" })
        {
            await node.DefineGroupAsync(group, Held);
            using var pause = await node.Client.PostAsync($"/v1/groups/{group}/pause", content: null);
        }

        await node.IngestManyAsync("b", 3);
        await node.IngestManyAsync("c", 2);
        await node.IngestManyAsync("d", 1);

        var metrics = await node.Client.GetStringAsync("/metrics");

        Assert.Equal(
            new Dictionary<string, double> { ["b"] = 3, ["c"] = 2, [GroupSelection.Other] = 1 },
            Exposition.ByLabel(metrics, "clusterqueue_queue_depth", "group"));
        Assert.Equal(2, Exposition.Value(metrics, "clusterqueue_groups_in_other"));
        Assert.Equal(4, Exposition.Value(metrics, "clusterqueue_groups"));

        // Counters too: d's ingest counts under (other), and nothing of a or d is named.
        Assert.Equal(
            new Dictionary<string, double> { ["b"] = 3, ["c"] = 2, [GroupSelection.Other] = 1 },
            Exposition.ByLabel(metrics, "clusterqueue_ingested_total", "group"));
        Assert.Equal(["b", "c"], Exposition.ByLabel(metrics, "clusterqueue_group_paused", "group").Keys.Order());

        // d passes c: they trade places, and (other) only grows.
        await node.IngestManyAsync("d", 4);
        await node.Client.GetStringAsync("/metrics");
        await node.IngestManyAsync("c", 1);
        metrics = await node.Client.GetStringAsync("/metrics");

        Assert.Equal(
            new Dictionary<string, double> { ["d"] = 5, ["b"] = 3, [GroupSelection.Other] = 3 },
            Exposition.ByLabel(metrics, "clusterqueue_queue_depth", "group"));
        var ingested = Exposition.ByLabel(metrics, "clusterqueue_ingested_total", "group");
        Assert.Equal(5, ingested["d"]);
        Assert.False(ingested.ContainsKey("c"));
        // d's four while it was hidden, c's one since: (other) counts what happened while a group was not named.
        Assert.Equal(1 + 4 + 1, ingested[GroupSelection.Other]);
    }

    [Fact]
    public async Task Metrics_ManyGroupsTakingTurns_RebuildTheMeter_WithoutOverflowOrStaleSeries()
    {
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Observability:MaxGroupSeries"] = "1" });
        const int groups = 8;
        for (var i = 0; i < groups; i++)
        {
            await node.DefineGroupAsync($"g{i}", Held);
            using var pause = await node.Client.PostAsync($"/v1/groups/g{i}/pause", content: null);
        }

        double lastOther = 0;
        for (var i = 0; i < groups; i++)
        {
            // Each group in turn takes the largest backlog and so the one named series.
            await node.IngestManyAsync($"g{i}", i + 1);
            var metrics = await node.Client.GetStringAsync("/metrics");

            Assert.Equal(
                new Dictionary<string, double> { [$"g{i}"] = i + 1, [GroupSelection.Other] = i * (i + 1) / 2 },
                Exposition.ByLabel(metrics, "clusterqueue_queue_depth", "group"));
            Assert.DoesNotContain(Exposition.Parse(metrics), s => s.Labels.ContainsKey("otel_metric_overflow"));
            var other = Exposition.Value(metrics, "clusterqueue_ingested_total", ("group", GroupSelection.Other)) ?? 0;
            Assert.True(other >= lastOther, $"(other) went down from {lastOther} to {other}");
            lastOther = other;
        }

        // Two label values per scrape, room for four: the meter had to be rebuilt at least twice over eight groups.
        Assert.True(node.Get<NodeMeter>().Rebuilds >= 2, $"rebuilt {node.Get<NodeMeter>().Rebuilds} times");
    }

    [Fact]
    public async Task Metrics_HandlerCalls_AreTimedByOutcome()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Attempt == 1 ? new DownstreamReply(500) : DownstreamReply.Ok;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders") with
        {
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.05 },
        });
        await node.IngestOkAsync("orders", """{"a":1}""");

        var metrics = await Eventually.ReadAsync(
            () => node.Client.GetStringAsync("/metrics"),
            m => Exposition.Value(m, "clusterqueue_handler_duration_seconds_count", ("outcome", "delivered")) == 1,
            "one delivered call timed");

        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_handler_duration_seconds_count", ("outcome", "failed")));
        Assert.Equal(1, Exposition.Value(metrics, "clusterqueue_handler_duration_seconds_bucket", ("outcome", "delivered"), ("le", "+Inf")));
        Assert.True(Exposition.Value(metrics, "clusterqueue_handler_duration_seconds_sum", ("outcome", "delivered")) > 0);
    }

    // Nothing is delivered to this target: its port refuses connections, and the rate holds a retry back for 1000 s.
    private static readonly GroupDefinition Held = new()
    {
        RatePerSecond = 0.001,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = "http://127.0.0.1:9/hook" },
    };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
