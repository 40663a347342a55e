using System.Net.Http.Json;
using System.Text.Json;
using ClusterQueue.Node.Dashboard;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Dashboard;

/// <summary>The dashboard's header and table on a cluster of node processes on a real PostgreSQL.</summary>
public sealed class ClusterHeaderTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    private static readonly string[] Two = ["node-a", "node-b"];

    [Fact]
    public async Task GroupsPage_InACluster_ListsTheMembersWithTheirShards_AndLeavesAnotherNodesLiveStateOut()
    {
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(Two);
        var elsewhere = ClusterRig.GroupOwnedBy("node-b", Two, "dash");
        var here = ClusterRig.GroupOwnedBy("node-a", Two, "dash");
        foreach (var group in new[] { elsewhere, here })
        {
            // Paused, so each group's actor stays alive with its full bucket once a message has placed its shard.
            await ClusterTests.DefineAsync(cluster["node-a"], group, new() { RatePerSecond = 1, Burst = 3, MaxConcurrency = 1, Target = new() { Url = "http://127.0.0.1:9/x" } });
            using var pause = await cluster["node-a"].Client.PostAsync($"/v1/groups/{group}/pause", null);
            pause.EnsureSuccessStatusCode();
            using var ingest = await cluster["node-a"].Client.PostAsync($"/hooks/{group}", new StringContent("{}"));
            Assert.Equal(System.Net.HttpStatusCode.Accepted, ingest.StatusCode);
        }

        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var page = await Eventually.ReadAsync(
            async () => (await cluster["node-a"].Client.GetFromJsonAsync<GroupPage>("/v1/dashboard/groups?q=" + elsewhere, json))!,
            p => p.Node.Members is { Count: 2 } members && members.All(m => m.Shards == 1) && p.Groups.Count == 1,
            "each member holding the shard of its group",
            TimeSpan.FromSeconds(30));

        Assert.Equal(Two, page.Node.Members!.Select(m => m.NodeId));
        Assert.True(page.Node.Members!.Single(m => m.NodeId == "node-a").Self);
        Assert.All(page.Node.Members!, m => Assert.False(m.Leaving));
        var row = Assert.Single(page.Groups);
        Assert.False(row.Here);
        Assert.Null(row.Tokens);
        Assert.Null(row.InFlight);

        var owner = (await cluster["node-b"].Client.GetFromJsonAsync<GroupPage>("/v1/dashboard/groups?q=" + elsewhere, json))!;
        Assert.True(owner.Groups.Single().Here);
        Assert.Equal(3, owner.Groups.Single().Tokens);
    }
}
