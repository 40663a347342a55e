using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>POST /v1/groups/{id}/pause, /resume and /purge on the embedded node, the cluster and the SQS queue.</summary>
public sealed class PauseAndPurgeTests(PostgresServer server, SqsEmulator emulator) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    // Long enough for an actor that ignored the pause to have called the downstream several times over.
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1.5);

    [Fact]
    public async Task Embedded_PausedGroup_TakesIngestButCallsNothing_EvenAfterARestartOrAPut_UntilResumed()
    {
        using var directory = new TempDirectory();
        var database = directory.File("pause.db");
        await using var downstream = await Downstream.StartAsync();
        var definition = GroupDefinitions.Forwarding(downstream, "/held", rate: 100, burst: 10);
        var node = NodeHost.Start(databasePath: database);
        try
        {
            await node.DefineGroupAsync("held", definition);
            var paused = await PostAsync(node.Client, "/v1/groups/held/pause");
            Assert.True(paused.Paused);
            Assert.NotNull(paused.PausedAt);
            Assert.Equal(paused.PausedAt, (await PostAsync(node.Client, "/v1/groups/held/pause")).PausedAt);

            await node.IngestManyAsync("held", 5);
            await Task.Delay(Quiet);
            Assert.Empty(downstream.CallsTo("/held"));
            var stats = await node.StatsAsync("held");
            Assert.True(stats.Paused);
            Assert.Equal(5, stats.Queued);
            Assert.Contains("clusterqueue_group_paused{group=\"held\"} 1", await node.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

            // A new definition is not a resume.
            Assert.True((await node.DefineGroupAsync("held", definition with { RatePerSecond = 50 })).Paused);
        }
        finally
        {
            await node.DisposeAsync();
        }

        await using var restarted = NodeHost.Start(databasePath: database);
        Assert.True((await restarted.Client.GetFromJsonAsync<GroupResponse>("/v1/groups/held"))!.Paused);
        await Task.Delay(Quiet);
        Assert.Empty(downstream.CallsTo("/held"));

        var resumed = await PostAsync(restarted.Client, "/v1/groups/held/resume");
        Assert.False(resumed.Paused);
        Assert.Null(resumed.PausedAt);
        await downstream.WaitUntilAsync(d => d.CallsTo("/held").Count == 5, TimeSpan.FromSeconds(10), "the 5 held messages");
        Assert.DoesNotContain("clusterqueue_group_paused{", await restarted.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/groups/nope/pause")]
    [InlineData("/v1/groups/nope/resume")]
    [InlineData("/v1/groups/nope/purge?confirm=nope")]
    public async Task UnknownGroup_Is404(string path)
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PostAsync(path, null);

        await Problems.ReadAsync(response, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Embedded_Purge_NeedsTheGroupIdAsConfirmation_AndSparesTheMessageInACall()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(1.5));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("full", GroupDefinitions.Forwarding(downstream, "/full", rate: 100, burst: 10, concurrency: 1));
        var ids = await node.IngestManyAsync("full", 6);
        await downstream.WaitUntilAsync(d => d.CallsTo("/full").Count == 1, TimeSpan.FromSeconds(10), "the first call");

        foreach (var path in new[] { "/v1/groups/full/purge", "/v1/groups/full/purge?confirm=other" })
        {
            using var refused = await node.Client.PostAsync(path, null);
            await Problems.AssertValidationErrorAsync(refused, "confirm");
        }

        Assert.Equal(5, (await node.StatsAsync("full")).Queued);
        using var purge = await node.Client.PostAsync("/v1/groups/full/purge?confirm=full", null);
        Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
        Assert.Equal(5, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);

        // The call in flight finishes and is recorded; the purged ones are gone.
        var inCall = downstream.CallsTo("/full").Single().MessageId!;
        await Eventually.ReadAsync(() => node.StatsAsync("full"), s => s.Delivered == 1 && s.Queued == 0 && s.InFlight == 0, "the call in flight delivered");
        await Task.Delay(Quiet);
        Assert.Single(downstream.CallsTo("/full"));
        foreach (var id in ids.Where(id => id != inCall))
        {
            using var status = await node.Client.GetAsync($"/v1/messages/{id}");
            Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        }
    }

    [Fact]
    public async Task Cluster_PauseAtANonOwner_StopsTheOwner_PurgeAndResumeWorkFromAnyNode()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "paused");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 100, burst: 10));

        await PostAsync(cluster["node-a"].Client, $"/v1/groups/{group}/pause");
        await Eventually.ReadAsync(
            () => cluster["node-b"].Client.GetFromJsonAsync<GroupResponse>($"/v1/groups/{group}")!,
            g => g!.Paused,
            "the pause on the owner");
        for (var i = 0; i < 3; i++)
        {
            await ClusterTests.IngestAsync(cluster["node-a"], group, $$"""{"n":{{i}}}""");
        }

        await Task.Delay(Quiet);
        Assert.Empty(downstream.CallsTo($"/{group}"));

        using (var purge = await cluster["node-a"].Client.PostAsync($"/v1/groups/{group}/purge?confirm={group}", null))
        {
            Assert.Equal(3, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);
        }

        var kept = await ClusterTests.IngestAsync(cluster["node-b"], group, """{"n":"kept"}""");
        await PostAsync(cluster["node-a"].Client, $"/v1/groups/{group}/resume");
        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count >= 1, TimeSpan.FromSeconds(10), "the message ingested after the purge");
        await Task.Delay(Quiet);
        var call = Assert.Single(downstream.CallsTo($"/{group}"));
        Assert.Equal(kept, call.MessageId);
        Assert.Equal("node-b", call.Node);
    }

    [Fact]
    public async Task Sqs_PauseResumeAndPurge()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("sqsheld", GroupDefinitions.Forwarding(downstream, "/sqsheld", rate: 100, burst: 10));
        await PostAsync(node.Client, "/v1/groups/sqsheld/pause");
        await node.IngestManyAsync("sqsheld", 4);
        await Task.Delay(Quiet);
        Assert.Empty(downstream.CallsTo("/sqsheld"));

        using (var purge = await node.Client.PostAsync("/v1/groups/sqsheld/purge?confirm=sqsheld", null))
        {
            Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
            Assert.Equal(4, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);
        }

        Assert.Equal(0, (await node.StatsAsync("sqsheld")).Queued);
        var kept = await node.IngestOkAsync("sqsheld", """{"n":"kept"}""");
        await PostAsync(node.Client, "/v1/groups/sqsheld/resume");
        await downstream.WaitUntilAsync(d => d.CallsTo("/sqsheld").Count >= 1, TimeSpan.FromSeconds(10), "the message ingested after the purge");
        await Task.Delay(Quiet);
        Assert.Equal(kept, Assert.Single(downstream.CallsTo("/sqsheld")).MessageId);
    }

    private static async Task<GroupResponse> PostAsync(HttpClient client, string path)
    {
        using var response = await client.PostAsync(path, null);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
    }
}
