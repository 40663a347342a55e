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
