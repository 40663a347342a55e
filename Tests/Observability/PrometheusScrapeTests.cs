using System.Net;
using System.Net.Http.Headers;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Observability;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Observability;

/// <summary>A real Prometheus scrapes a real node on loopback, and PromQL over its HTTP API sees the per-group series.</summary>
public sealed class PrometheusScrapeTests
{
    private static readonly TimeSpan Scraped = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Prometheus_ScrapingTheNode_QueriesBacklogAgeAndDeliveriesPerGroup()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("held", Held);
        await node.DefineGroupAsync("light", Held);
        await node.DefineGroupAsync("flowing", GroupDefinitions.Forwarding(downstream, "/flowing"));
        await PauseAsync(node, "held");
        await PauseAsync(node, "light");
        await IngestAsync(node, "held", 3);
        await IngestAsync(node, "light", 1);
        await IngestAsync(node, "flowing", 2);
        await downstream.WaitUntilAsync(d => d.CallsTo("/flowing").Count == 2, TimeSpan.FromSeconds(10), "the two flowing messages");

        await using var prometheus = await PrometheusServer.StartAsync(node.BaseAddress);

        var depths = await QueryUntilAsync(prometheus, "clusterqueue_queue_depth", r => r.Count == 3 && r.Single(s => s.Labels["group"] == "flowing").Value == 0);
        Assert.Equal(3, depths.Single(s => s.Labels["group"] == "held").Value);
        Assert.Equal(1, depths.Single(s => s.Labels["group"] == "light").Value);
        Assert.All(depths, s => Assert.Equal("clusterqueue", s.Labels["job"]));

        var delivered = await QueryUntilAsync(prometheus, "sum by (group) (clusterqueue_delivered_total)", r => r.Count == 1);
        Assert.Equal(("flowing", 2.0), (delivered[0].Labels["group"], delivered[0].Value));

        var waiting = await QueryUntilAsync(prometheus, "clusterqueue_oldest_message_age_seconds > 1", r => r.Count == 2);
        Assert.Equal(["held", "light"], waiting.Select(s => s.Labels["group"]).Order());

        var paused = await QueryUntilAsync(prometheus, "clusterqueue_group_paused == 1", r => r.Count == 2);
        Assert.Equal(["held", "light"], paused.Select(s => s.Labels["group"]).Order());
        Assert.Equal(("up", ""), await prometheus.TargetAsync());
    }

    [Fact]
    public async Task Prometheus_BeyondMaxGroupSeries_SeesTheLargestBacklogsAndOneAggregate()
    {
        await using var node = new KestrelNode(new Dictionary<string, string?> { ["ClusterQueue:Observability:MaxGroupSeries"] = "2" });
        for (var i = 1; i <= 5; i++)
        {
            await node.DefineGroupAsync($"g{i}", Held);
            await PauseAsync(node, $"g{i}");
            await IngestAsync(node, $"g{i}", i);
        }

        await using var prometheus = await PrometheusServer.StartAsync(node.BaseAddress);

        var depths = await QueryUntilAsync(prometheus, "clusterqueue_queue_depth", r => r.Count == 3);
        Assert.Equal(
            new Dictionary<string, double> { ["g5"] = 5, ["g4"] = 4, [GroupSelection.Other] = 1 + 2 + 3 },
            depths.ToDictionary(s => s.Labels["group"], s => s.Value));
        var total = await QueryUntilAsync(prometheus, "sum(clusterqueue_queue_depth)", r => r.Count == 1);
        Assert.Equal(15, total[0].Value);
        var hidden = await QueryUntilAsync(prometheus, "clusterqueue_groups_in_other", r => r.Count == 1);
        Assert.Equal(3, hidden[0].Value);
    }

    [Fact]
    public async Task PromtoolCheckMetrics_FindsNoProblemInAScrape()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = new KestrelNode();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));
        await IngestAsync(node, "orders", 3);
        using var unknown = await node.Client.PostAsync("/hooks/nobody", new StringContent("{}"));
        await downstream.WaitUntilAsync(d => d.CallsTo("/orders").Count == 3, TimeSpan.FromSeconds(10), "the three messages");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/plain"));
        using var response = await node.Client.SendAsync(request);
        var exposition = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("clusterqueue_delivered_total{group=\"orders\"} 3", exposition, StringComparison.Ordinal);

        // The node's own families: no finding at all.
        var (ownExit, ownOutput) = await PrometheusServer.CheckMetricsAsync(Families(exposition, "clusterqueue_"));
        Assert.True(ownExit == 0, $"promtool check metrics exited {ownExit} on the clusterqueue_ families:\n{ownOutput}");

        // The whole scrape parses (exit 1 would be a parse error); the only lint findings allowed are instrument names
        // the OpenTelemetry semantic conventions give: the .NET runtime's (dotnet.assembly.count and the like) and
        // Npgsql's (db.client.connection.count, present once any data source exists in the process).
        var (exitCode, output) = await PrometheusServer.CheckMetricsAsync(exposition);
        Assert.True(exitCode is 0 or 3, $"promtool check metrics exited {exitCode}:\n{output}");
        Assert.All(
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries),
            finding => Assert.Matches("^(dotnet|db_client)_[a-z_]+_count non-histogram and non-summary metrics should not have \"_count\" suffix$", finding));
    }

    /// <summary>The metric families (HELP, TYPE and samples) whose names start with the prefix.</summary>
    private static string Families(string exposition, string prefix)
    {
        var kept = new System.Text.StringBuilder();
        var keep = false;
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal) || line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                keep = line[7..].StartsWith(prefix, StringComparison.Ordinal);
            }

            if (keep && line.Length > 0)
            {
                kept.Append(line).Append('\n');
            }
        }

        Assert.Contains($"# TYPE {prefix}", kept.ToString(), StringComparison.Ordinal);
        return kept.ToString();
    }

    private static async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryUntilAsync(
        PrometheusServer prometheus, string promQl, Func<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>, bool> done) =>
        await Eventually.ReadAsync(() => prometheus.QueryAsync(promQl), done, $"Prometheus to answer {promQl}", Scraped);

    private static async Task PauseAsync(KestrelNode node, string group)
    {
        using var pause = await node.Client.PostAsync($"/v1/groups/{group}/pause", content: null);
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
    }

    private static async Task IngestAsync(KestrelNode node, string group, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await node.Client.PostAsync($"/hooks/{group}", new StringContent($$"""{"n":{{i}}}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
    }

    // Nothing is delivered to this target: its port refuses connections, and the rate holds a retry back for 1000 s.
    private static readonly GroupDefinition Held = new()
    {
        RatePerSecond = 0.001,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new TargetDefinition { Url = "http://127.0.0.1:9/hook" },
    };
}
