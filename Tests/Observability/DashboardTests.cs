using System.Net;
using System.Text.RegularExpressions;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Observability;

/// <summary>
/// The Grafana dashboard and the alert rules ask for series the node really exports: a renamed metric would leave a
/// panel empty or an alert silent, and nothing else would say so.
/// </summary>
public sealed partial class DashboardTests
{
    // Cluster-only: a node without PostgreSQL holds no shards (the cluster tests read it from a real cluster).
    private static readonly HashSet<string> ClusterOnly = ["clusterqueue_shards_held"];

    [Theory]
    [InlineData("deploy/grafana/clusterqueue-dashboard.json")]
    [InlineData("deploy/k8s/helm/clusterqueue/files/clusterqueue-rules.yaml")]
    public async Task EveryClusterQueueSeriesItUses_IsOneTheNodeExports(string file)
    {
        var used = MetricName().Matches(await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), file))).Select(m => m.Value).ToHashSet();
        Assert.NotEmpty(used);

        var exported = await ExportedByABusyNodeAsync();

        Assert.All(used.Except(ClusterOnly), name => Assert.True(exported.Contains(name), $"{file} uses {name}, which the node does not export (it exports {string.Join(", ", exported.Order())})"));
    }

    /// <summary>A node with traffic of every kind: deliveries, duplicates, failures, dead letters, throttles, a pause, a refusal.</summary>
    private static async Task<HashSet<string>> ExportedByABusyNodeAsync()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Path switch
        {
            "/bad" => new DownstreamReply(500),
            "/slow" => new DownstreamReply(429, RetryAfter: "1"),
            _ => DownstreamReply.Ok,
        };
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("ok", GroupDefinitions.Forwarding(downstream, "/ok"));
        await node.DefineGroupAsync("bad", GroupDefinitions.Forwarding(downstream, "/bad") with { MaxAttempts = 1 });
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 10, burst: 1) with { AdaptiveRate = new AdaptiveRateDefinition() });
        await node.DefineGroupAsync("held", GroupDefinitions.Forwarding(downstream, "/held"));
        using (var pause = await node.Client.PostAsync("/v1/groups/held/pause", content: null))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        }

        var key = new Dictionary<string, string> { ["Idempotency-Key"] = "once" };
        await node.IngestOkAsync("ok", "{}", key);
        await node.IngestOkAsync("ok", "{}", key);
        await node.IngestOkAsync("bad", "{}");
        await node.IngestOkAsync("slow", "{}");
        await node.IngestOkAsync("held", "{}");
        using (var refused = await node.IngestAsync("nobody", "{}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        }

        // Two refusals in a row lower the slow group's rate; by then every other kind of event has happened too.
        var metrics = await Eventually.ReadAsync(
            () => node.Client.GetStringAsync("/metrics"),
            m => Exposition.Value(m, "clusterqueue_effective_rate", ("group", "slow")) is not null
                && Exposition.Value(m, "clusterqueue_dead_total", ("group", "bad")) == 1
                && Exposition.Value(m, "clusterqueue_delivered_total", ("group", "ok")) == 1,
            "every kind of event",
            TimeSpan.FromSeconds(20));
        return Exposition.Parse(metrics).Select(s => s.Name).ToHashSet();
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ClusterQueue.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No ClusterQueue.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex("clusterqueue_[a-z_]+[a-z]")]
    private static partial Regex MetricName();
}
