using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing;

/// <summary>Dead letters keep every attempt's outcome; selections for redrive and purge; retention. On every store and queue.</summary>
public sealed class DeadLetterCareTests(PostgresServer server, SqsEmulator emulator) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    /// <summary>Attempt 1 answers 500, attempt 2 answers 429 without Retry-After, attempt 3 outlasts the 1 s handler timeout.</summary>
    private static DownstreamReply ThreeWaysToFail(DownstreamCall call) => call.Attempt switch
    {
        1 => new DownstreamReply(500, Body: "boom"),
        2 => new DownstreamReply(429, Body: "slow down"),
        _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(3)),
    };

    private static GroupDefinition Failing(Downstream downstream, string path) => GroupDefinitions.Forwarding(downstream, path) with
    {
        MaxAttempts = 3,
        HandlerTimeoutSeconds = 1,
        RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.1 },
    };

    [Fact]
    public async Task Embedded_DeadLetter_KeepsEveryAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = ThreeWaysToFail;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("fails", Failing(downstream, "/fails"));

        var id = await node.IngestOkAsync("fails", "{}");

        await AssertHistoryAsync(node.Client, "fails", id);
    }

    [Fact]
    public async Task Cluster_DeadLetter_KeepsEveryAttempt()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = ThreeWaysToFail;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "fails");
        await ClusterTests.DefineAsync(cluster["node-a"], group, Failing(downstream, $"/{group}"));

        var id = await ClusterTests.IngestAsync(cluster["node-a"], group, "{}");

        await AssertHistoryAsync(cluster["node-a"].Client, group, id);
    }

    [Fact]
    public async Task Sqs_DeadLetter_KeepsEveryAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = ThreeWaysToFail;
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("sqsfails", Failing(downstream, "/sqsfails"));

        var id = await node.IngestOkAsync("sqsfails", "{}");

        await AssertHistoryAsync(node.Client, "sqsfails", id);
    }

    [Fact]
    public Task Embedded_RedriveAndPurge_BySelection() => RedriveAndPurgeAsync(NodeHost.Start());

    [Fact]
    public Task Sqs_RedriveAndPurge_BySelection() => RedriveAndPurgeAsync(NodeHost.Start(SqsNode.Settings(emulator.Endpoint)));

    [Fact]
    public async Task Cluster_RedriveAndPurge_BySelection()
    {
        // A node of a cluster store, in process: the same PostgreSQL queue, shard fencing and change feed as several.
        await using var cluster = await ClusterRig.CreateAsync(server);
        var settings = cluster.Settings("node-a").ToDictionary(s => s.Key, s => (string?)s.Value);
        await RedriveAndPurgeAsync(NodeHost.Start(settings));
    }

    private static async Task RedriveAndPurgeAsync(NodeHost host)
    {
        await using var node = host;
        await using var downstream = await Downstream.StartAsync();
        var failing = true;
        downstream.Reply = _ => Volatile.Read(ref failing) ? new DownstreamReply(500) : DownstreamReply.Ok;
        await node.DefineGroupAsync("dl", GroupDefinitions.Forwarding(downstream, "/dl", rate: 10, burst: 2) with { MaxAttempts = 1 });

        var early = await node.IngestManyAsync("dl", 3);
        await Eventually.ReadAsync(() => node.StatsAsync("dl"), s => s.Dead == 3, "the first 3 dead letters");
        await Task.Delay(50);
        var between = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        var late = await node.IngestManyAsync("dl", 3);
        await Eventually.ReadAsync(() => node.StatsAsync("dl"), s => s.Dead == 6, "all 6 dead letters");

        foreach (var (path, body, field) in new[]
        {
            ("/v1/groups/dl/dead-letters/redrive", $$"""{"messageIds":["{{early[0]}}"],"deadAfter":"{{between:O}}"}""", "messageIds"),
            ("/v1/groups/dl/dead-letters/redrive", $$"""{"deadAfter":"{{between:O}}","deadBefore":"{{between.AddSeconds(-1):O}}"}""", "deadBefore"),
            ("/v1/groups/dl/dead-letters/purge", "{}", "confirm"),
            ("/v1/groups/dl/dead-letters/purge?confirm=other", "{}", "confirm"),
            ("/v1/groups/dl/dead-letters/purge?confirm=dl", """{"deadBefore":"soon"}""", "deadBefore"),
            ("/v1/groups/dl/dead-letters/purge?confirm=dl", $$"""{"messageIds":["{{late[0]}}"],"deadBefore":"{{between:O}}"}""", "messageIds"),
        })
        {
            using var refused = await node.Client.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            await Problems.AssertValidationErrorAsync(refused, field);
        }

        Assert.Equal(6, (await node.StatsAsync("dl")).Dead);

        // Those that died before the boundary go back, and are delivered now that the target works.
        Volatile.Write(ref failing, false);
        using (var redrive = await node.Client.PostAsJsonAsync("/v1/groups/dl/dead-letters/redrive", new RedriveRequest { DeadBefore = between }))
        {
            Assert.Equal(3, (await redrive.Content.ReadFromJsonAsync<RedriveResult>())!.Redriven);
        }

        await downstream.WaitUntilAsync(d => early.All(id => d.CallsTo("/dl").Any(c => c.MessageId == id && c.Attempt == 1 && c.ReceivedAt > between)), TimeSpan.FromSeconds(15), "the redriven messages");

        // The later ones are purged for good.
        using (var purge = await node.Client.PostAsJsonAsync("/v1/groups/dl/dead-letters/purge?confirm=dl", new RedriveRequest { DeadAfter = between }))
        {
            Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
            Assert.Equal(3, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);
        }

        var stats = await Eventually.ReadAsync(() => node.StatsAsync("dl"), s => s.Dead == 0 && s.Delivered == 3, "no dead letters left, the redriven delivered");
        Assert.Equal(3, stats.Delivered);
        foreach (var id in late)
        {
            using var status = await node.Client.GetAsync($"/v1/messages/{id}");
            Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        }
    }

    [Fact]
    public Task Embedded_RedriveOfMany_GoesOutWithinTheGroupsBucket() => RedriveOfManyAsync(NodeHost.Start());

    [Fact]
    public Task Sqs_RedriveOfMany_GoesOutWithinTheGroupsBucket() => RedriveOfManyAsync(NodeHost.Start(SqsNode.Settings(emulator.Endpoint)));

    private static async Task RedriveOfManyAsync(NodeHost host)
    {
        await using var node = host;
        await using var downstream = await Downstream.StartAsync();
        var failing = true;
        downstream.Reply = _ => Volatile.Read(ref failing) ? new DownstreamReply(500) : DownstreamReply.Ok;
        await node.DefineGroupAsync("many", GroupDefinitions.Forwarding(downstream, "/many", rate: 20, burst: 3, concurrency: 8) with { MaxAttempts = 1 });
        await node.IngestManyAsync("many", 40, senders: 8);
        await Eventually.ReadAsync(() => node.StatsAsync("many"), s => s.Dead == 40, "40 dead letters", TimeSpan.FromSeconds(15));
        Volatile.Write(ref failing, false);
        var redrivenAt = DateTimeOffset.UtcNow;

        using (var redrive = await node.Client.PostAsync("/v1/groups/many/dead-letters/redrive", null))
        {
            Assert.Equal(40, (await redrive.Content.ReadFromJsonAsync<RedriveResult>())!.Redriven);
        }

        await downstream.WaitUntilAsync(d => d.CallsTo("/many").Count(c => c.ReceivedAt > redrivenAt) == 40, TimeSpan.FromSeconds(15), "the 40 redriven calls");
        var arrivals = downstream.Arrivals("/many").Where(a => a > redrivenAt).ToList();
        BucketAssert.WithinBucket("many", 20, 3, arrivals);
        Assert.True(arrivals[^1] - arrivals[0] >= TimeSpan.FromSeconds(1.5), "40 redriven messages went out faster than 20/s with a burst of 3");
    }

    [Fact]
    public async Task Cluster_RedriveAndPurgeOnAnotherNode_ReachTheOwnerAndKeepItsBucket()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        var failing = true;
        downstream.Reply = _ => Volatile.Read(ref failing) ? new DownstreamReply(503, Body: "down") : DownstreamReply.Ok;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "redrive");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 20, burst: 3, concurrency: 8) with { MaxAttempts = 1 });
        var client = cluster["node-a"].Client;

        var first = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            first.Add(await ClusterTests.IngestAsync(cluster["node-a"], group, "{}"));
        }

        await Eventually.ReadAsync(() => client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats")!, s => s!.Dead == 30, "30 dead letters", TimeSpan.FromSeconds(20));
        var between = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        var later = await ClusterTests.IngestAsync(cluster["node-a"], group, "{}");
        await Eventually.ReadAsync(() => client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats")!, s => s!.Dead == 31, "the later dead letter", TimeSpan.FromSeconds(20));
        var letters = (await client.GetFromJsonAsync<DeadLetterList>($"/v1/groups/{group}/dead-letters?limit=1000"))!.DeadLetters;
        Assert.All(letters, l => Assert.Equal(503, Assert.Single(l.AttemptHistory!).Status));

        // Node-a takes the requests; node-b owns the group and delivers what went back, at the group's rate.
        Volatile.Write(ref failing, false);
        var redrivenAt = DateTimeOffset.UtcNow;
        using (var redrive = await client.PostAsJsonAsync($"/v1/groups/{group}/dead-letters/redrive", new RedriveRequest { DeadBefore = between }))
        {
            Assert.Equal(30, (await redrive.Content.ReadFromJsonAsync<RedriveResult>())!.Redriven);
        }

        using (var purge = await client.PostAsJsonAsync($"/v1/groups/{group}/dead-letters/purge?confirm={group}", new RedriveRequest { MessageIds = [later, first[0]] }))
        {
            Assert.Equal(1, (await purge.Content.ReadFromJsonAsync<PurgeResult>())!.Purged);
        }

        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count(c => c.ReceivedAt > redrivenAt) == 30, TimeSpan.FromSeconds(20), "the 30 redriven calls");
        var calls = downstream.CallsTo($"/{group}").Where(c => c.ReceivedAt > redrivenAt).ToList();
        Assert.Equal(first.Order(StringComparer.Ordinal), calls.Select(c => c.MessageId).Order(StringComparer.Ordinal));
        Assert.All(calls, c => Assert.Equal(1, c.Attempt));
        BucketAssert.WithinBucket(group, 20, 3, [.. calls.Select(c => c.ReceivedAt).Order()]);
        var stats = await Eventually.ReadAsync(() => client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats")!, s => s!.Delivered == 30, "the redriven delivered", TimeSpan.FromSeconds(10));
        Assert.Equal(0, stats!.Dead);
        using var gone = await client.GetAsync($"/v1/messages/{later}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task GroupDeletion_TakesTheAttemptHistoriesAlong()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("doomed", GroupDefinitions.Forwarding(downstream, "/doomed") with
        {
            MaxAttempts = 2,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.1 },
        });
        await node.DefineGroupAsync("kept", GroupDefinitions.Forwarding(downstream, "/kept") with { MaxAttempts = 1 });
        await node.IngestManyAsync("doomed", 3);
        var kept = await node.IngestOkAsync("kept", "{}");
        await Eventually.ReadAsync(() => node.StatsAsync("doomed"), s => s.Dead == 3, "the doomed group's dead letters");
        await Eventually.ReadAsync(() => node.StatsAsync("kept"), s => s.Dead == 1, "the kept group's dead letter");
        var before = AttemptRows(node);

        using var deleted = await node.Client.DeleteAsync("/v1/groups/doomed");

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(7, before);
        Assert.Equal(1, AttemptRows(node));
        var status = await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{kept}");
        Assert.Equal("dead", Assert.Single(status!.AttemptHistory!).Outcome);
    }

    /// <summary>Attempt-history rows in the node's store, over all messages.</summary>
    private static long AttemptRows(NodeHost node)
    {
        using var connection = node.Get<ClusterQueue.Node.Storage.SqlDatabase>().OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM message_attempts;";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Retention_DeletesOldDeadLettersWithTheirHistory()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500);
        await using var node = NodeHost.Start(new Dictionary<string, string?>
        {
            ["ClusterQueue:Queueing:DeadLetterRetention"] = "00:00:01",
            ["ClusterQueue:Queueing:PurgeInterval"] = "00:00:01",
        });
        await node.DefineGroupAsync("old", GroupDefinitions.Forwarding(downstream, "/old") with { MaxAttempts = 1 });

        var id = await node.IngestOkAsync("old", "{}");
        await Eventually.ReadAsync(() => node.StatsAsync("old"), s => s.Dead == 1, "the dead letter");

        await Eventually.ReadAsync(() => node.StatsAsync("old"), s => s.Dead == 0, "the dead letter gone after its retention");
        using var status = await node.Client.GetAsync($"/v1/messages/{id}");
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        Assert.Equal(0, AttemptRows(node));
    }

    private static async Task AssertHistoryAsync(HttpClient client, string group, string id)
    {
        var status = await Eventually.ReadAsync(
            () => client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!,
            s => s!.State == "dead",
            "the dead letter",
            TimeSpan.FromSeconds(30));
        var letters = (await client.GetFromJsonAsync<DeadLetterList>($"/v1/groups/{group}/dead-letters"))!;
        var history = Assert.Single(letters.DeadLetters).AttemptHistory!;
        Assert.Equal(status!.AttemptHistory, history);

        Assert.Equal([1, 2, 3], history.Select(a => a.Attempt));
        Assert.Equal(["failed", "failed", "dead"], history.Select(a => a.Outcome));
        Assert.Equal([500, 429, null], history.Select(a => a.Status));
        Assert.Contains("boom", history[0].Error, StringComparison.Ordinal);
        Assert.Contains("slow down", history[1].Error, StringComparison.Ordinal);
        Assert.Contains("timed out", history[2].Error, StringComparison.Ordinal);

        // The third call ran into its 1 s timeout; the first two were answered at once.
        Assert.InRange(history[2].DurationMs, 900, 10_000);
        Assert.True(history[0].StartedAt < history[1].StartedAt && history[1].StartedAt < history[2].StartedAt, "attempts out of order");
    }
}
