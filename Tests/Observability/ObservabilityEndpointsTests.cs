using System.Net;
using System.Text;
using System.Text.Json;
using ClusterQueue.Contracts;
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
        Assert.Contains("clusterqueue_ingested_total{group=\"orders\"} 1", await node.Client.GetStringAsync("/metrics"));

        using var delete = await node.Client.DeleteAsync("/v1/groups/orders");

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var metrics = await node.Client.GetStringAsync("/metrics");
        Assert.DoesNotContain("group=\"orders\"", metrics);
        Assert.Contains("clusterqueue_ingested_total{group=\"kept\"} 1", metrics);
    }

    [Fact]
    public async Task Metrics_ListAGroupsCounterOnlyOnceItIsAboveZero()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", Held);
        using var post = await node.Client.PostAsync("/hooks/orders", Json("""{"a":1}"""));
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);

        var metrics = await node.Client.GetStringAsync("/metrics");

        Assert.Contains("clusterqueue_ingested_total{group=\"orders\"} 1", metrics);
        Assert.Contains("# TYPE clusterqueue_dead_total counter", metrics);
        Assert.DoesNotContain("clusterqueue_dead_total{group=\"orders\"}", metrics);
        Assert.DoesNotContain("clusterqueue_duplicates_total{group=\"orders\"}", metrics);
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
