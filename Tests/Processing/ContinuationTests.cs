using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Continuations: a downstream answering ClusterQueue-Continue gets the message again, with the cursor, under the group's bucket.</summary>
public sealed class ContinuationTests(PostgresServer server, SqsEmulator emulator) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    private const int Steps = 4;

    /// <summary>Steps 1..3 continue with cursor "c{step}"; step 4 finishes with 200 and a body naming the message's last cursor.</summary>
    private static DownstreamReply Chain(DownstreamCall call)
    {
        var step = call.Cursor is null ? 1 : int.Parse(call.Cursor[1..], System.Globalization.CultureInfo.InvariantCulture) + 1;
        return step < Steps
            ? new DownstreamReply(202, Continue: $"c{step}")
            : new DownstreamReply(200, Body: $$"""{"finishedAfter":"{{call.Cursor}}"}""", ContentType: "application/json");
    }

    [Fact]
    public async Task Embedded_ChainsOfSeveralSteps_CarryEachCursor_StayWithinTheBucket_AndShowInTheStatus()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = Chain;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("long", GroupDefinitions.Forwarding(downstream, "/long", rate: 5, burst: 1, concurrency: 4));

        var ids = await node.IngestManyAsync("long", 2);

        // 8 calls, 1 at once then 5/s: about 1.4 s.
        await downstream.WaitUntilAsync(d => d.CallsTo("/long").Count == 2 * Steps, TimeSpan.FromSeconds(15), "every step of both chains");
        AssertChains(downstream.CallsTo("/long"), ids);
        // Arrival slack as for a fresh node elsewhere: its first calls compile and open connections, and arrive bunched.
        BucketAssert.WithinBucket("long", 5, 1, downstream.Arrivals("/long"), TimeSpan.FromMilliseconds(150));
        foreach (var id in ids)
        {
            var status = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "delivered", "the chain's end");
            Assert.Equal(Steps, status!.Step);
            Assert.Equal("c3", status.Cursor);
            Assert.Equal(["c1", "c2", "c3"], status.Steps!.Select(s => s.Cursor));
            Assert.Equal([1, 2, 3], status.Steps!.Select(s => s.Step));
            Assert.All(status.Steps!, s => Assert.Equal(202, s.Status));
        }

        var stats = await node.StatsAsync("long");
        Assert.Equal(2, stats.Delivered);
        Assert.Equal(0, stats.Failed);
    }

    [Fact]
    public async Task Embedded_AStepBeyondMaxSteps_IsADeadLetter_AndAWaitingSenderGetsTheEndOfTheChain()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Path == "/endless" ? new DownstreamReply(202, Continue: "again") : Chain(call);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("endless", GroupDefinitions.Forwarding(downstream, "/endless") with { MaxSteps = 3 });
        await node.DefineGroupAsync("waited", GroupDefinitions.Forwarding(downstream, "/waited"));

        var id = await node.IngestOkAsync("endless", "{}");
        var status = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "dead", "the dead letter");
        Assert.Equal(3, downstream.CallsTo("/endless").Count);
        Assert.Contains("maxSteps", status!.LastError, StringComparison.Ordinal);
        var last = status.AttemptHistory![^1];
        Assert.Equal(("dead", 202), (last.Outcome, last.Status));

        using var waited = await node.Client.PostAsync("/hooks/waited?wait=20", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.OK, waited.StatusCode);
        Assert.Equal("""{"finishedAfter":"c3"}""", await waited.Content.ReadAsStringAsync());
        Assert.Equal(Steps, downstream.CallsTo("/waited").Count);
    }

    [Fact]
    public async Task Embedded_AnInvalidCursor_IsAFailedAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(202, Continue: "has space");
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("bad", GroupDefinitions.Forwarding(downstream, "/bad") with { MaxAttempts = 1 });

        var id = await node.IngestOkAsync("bad", "{}");

        var status = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "dead", "the dead letter");
        Assert.Contains("ClusterQueue-Continue", status!.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cluster_ChainIngestedAtANonOwner_RunsOnTheOwner()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = Chain;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "chain");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 10, burst: 2));

        var id = await ClusterTests.IngestAsync(cluster["node-a"], group, "{}");

        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count == Steps, TimeSpan.FromSeconds(20), "every step");
        AssertChains(downstream.CallsTo($"/{group}"), [id]);
        Assert.All(downstream.CallsTo($"/{group}"), c => Assert.Equal("node-b", c.Node));
        BucketAssert.WithinBucket(group, 10, 2, downstream.Arrivals($"/{group}"), TimeSpan.FromMilliseconds(150));
    }

    [Fact]
    public async Task Sqs_ChainsOfSeveralSteps_CarryEachCursor_AndStayWithinTheBucket()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => call.Path == "/warm" ? new DownstreamReply(200) : Chain(call);
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("sqschain", GroupDefinitions.Forwarding(downstream, "/sqschain", rate: 5, burst: 1, concurrency: 4));

        // A fresh node's first call to a target opens its connection and compiles the call path; under load it arrived
        // up to 170 ms after its token while the next arrived on time. One call through another group first, so the
        // chains' arrivals show their starts and the bucket is held to the usual slack.
        await node.DefineGroupAsync("sqswarm", GroupDefinitions.Forwarding(downstream, "/warm"));
        await node.IngestOkAsync("sqswarm", "{}");
        await downstream.WaitUntilAsync(d => d.CallsTo("/warm").Count == 1, TimeSpan.FromSeconds(20), "the warm-up call");

        var ids = await node.IngestManyAsync("sqschain", 2);

        await downstream.WaitUntilAsync(d => d.CallsTo("/sqschain").Count == 2 * Steps, TimeSpan.FromSeconds(20), "every step of both chains");
        AssertChains(downstream.CallsTo("/sqschain"), ids);
        BucketAssert.WithinBucket("sqschain", 5, 1, downstream.Arrivals("/sqschain"));
        foreach (var id in ids)
        {
            var status = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "delivered", "the chain's end");
            Assert.Equal(["c1", "c2", "c3"], status!.Steps!.Select(s => s.Cursor));
        }
    }

    [Fact]
    public Task Embedded_KilledMidChain_TheRestartedNodeFinishesIt_RepeatingAtMostTheStepInFlight() =>
        KillMidChainAndRestartAsync("crash", new Dictionary<string, string>());

    [Fact]
    public async Task Cluster_OwnerKilledMidChain_AnotherNodeFinishesIt_RepeatingAtMostTheStepInFlight()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => Chain(call) with { Delay = TimeSpan.FromMilliseconds(400) };
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "crashchain");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}"));
        var id = await ClusterTests.IngestAsync(cluster["node-a"], group, "{}");
        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count >= 2, TimeSpan.FromSeconds(15), "the second step");

        await cluster["node-b"].KillAsync();

        var status = await Eventually.ReadAsync(
            () => cluster["node-a"].Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!,
            s => s!.State == "delivered",
            "the chain finished by the surviving node",
            TimeSpan.FromSeconds(40));
        Assert.Equal(["c1", "c2", "c3"], status!.Steps!.Select(s => s.Cursor));
        AssertFinishedAfterACrash(downstream.CallsTo($"/{group}"));
        Assert.Equal("node-a", downstream.CallsTo($"/{group}")[^1].Node);
    }

    [Fact]
    public Task Sqs_KilledMidChain_TheRestartedNodeFinishesIt_RepeatingAtMostTheStepInFlight() =>
        KillMidChainAndRestartAsync("sqscrash", SqsNode.ProcessSettings(emulator.Endpoint, SqsNode.UniquePrefix()));

    /// <summary>
    /// A node process is killed while the second step's call is in flight (each step takes 400 ms); a node restarted on
    /// the same data finishes the chain.
    /// </summary>
    private static async Task KillMidChainAndRestartAsync(string group, Dictionary<string, string> settings)
    {
        using var directory = new TempDirectory();
        var database = directory.File($"{group}.db");
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = call => Chain(call) with { Delay = TimeSpan.FromMilliseconds(400) };
        settings["ClusterQueue:Processing:LeaseDuration"] = "00:00:02";
        string id;
        await using (var node = await NodeProcess.StartAsync(database, settings))
        {
            await ClusterTests.DefineAsync(node, group, GroupDefinitions.Forwarding(downstream, $"/{group}"));
            id = await ClusterTests.IngestAsync(node, group, "{}");
            await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count >= 2, TimeSpan.FromSeconds(15), "the second step");
            await node.KillAsync();
        }

        await using var restarted = await NodeProcess.StartAsync(database, settings);
        var status = await Eventually.ReadAsync(
            () => restarted.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!,
            s => s!.State == "delivered",
            "the chain finished after the restart",
            TimeSpan.FromSeconds(30));
        Assert.Equal(["c1", "c2", "c3"], status!.Steps!.Select(s => s.Cursor));
        AssertFinishedAfterACrash(downstream.CallsTo($"/{group}"));
    }

    /// <summary>Every step ran, in order; only the step whose call the kill cut may have run twice.</summary>
    private static void AssertFinishedAfterACrash(IReadOnlyList<DownstreamCall> calls)
    {
        var ordered = calls.OrderBy(c => c.ReceivedAt).ToList();
        Assert.Equal([null, "c1", "c2", "c3"], ordered.Select(c => c.Cursor).Distinct());
        Assert.InRange(ordered.Count, Steps, Steps + 1);
        Assert.True(ordered.Select(c => c.Cursor).Zip(ordered.Skip(1).Select(c => c.Cursor), (first, second) => first == second).Count(repeated => repeated) <= 1, "more than one step repeated");
    }

    private static void AssertChains(IReadOnlyList<DownstreamCall> calls, IEnumerable<string> ids)
    {
        foreach (var id in ids)
        {
            var chain = calls.Where(c => c.MessageId == id).OrderBy(c => c.ReceivedAt).ToList();
            Assert.Equal(Steps, chain.Count);
            Assert.Equal([null, "c1", "c2", "c3"], chain.Select(c => c.Cursor));
            Assert.Equal([0, 2, 3, 4], chain.Select(c => c.Step));
            Assert.All(chain, c => Assert.Equal(1, c.Attempt));
        }
    }
}
