using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Cluster;

/// <summary>
/// A pod's end as Kubernetes brings it: SIGTERM while traffic still arrives. The node must turn not-ready at once, keep
/// making what it accepts durable, finish or hand back its calls, release its leases (not leave them to expire) and
/// exit inside the grace period.
/// </summary>
public sealed class DrainTests(PostgresServer server, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task Sigterm_UnderLoad_TurnsNotReady_KeepsIngestDurable_ReleasesLeasesAtOnce_AndLosesNothing()
    {
        await using var downstream = await Downstream.StartAsync();
        // node-b's calls take a second, so its drain lasts about that long and ingress meets a node that is draining.
        downstream.Reply = call => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(call.Node == "node-b" ? 1000 : 50));
        await using var cluster = await ClusterRig.CreateAsync(server);

        // A TTL far longer than the test: leases that were left to expire instead of released would show.
        Dictionary<string, string> Settings(string node)
        {
            var settings = cluster.Settings(node);
            settings["ClusterQueue:Cluster:LeaseTtl"] = "00:01:00";
            settings["ClusterQueue:Cluster:RenewInterval"] = "00:00:01";
            settings["ClusterQueue:Cluster:SafetyMargin"] = "00:00:10";
            return settings;
        }

        var survivor = await cluster.StartAsync("node-a", Settings("node-a"));
        var stopping = await cluster.StartAsync("node-b", Settings("node-b"));
        var group = ClusterRig.GroupOwnedBy("node-b", ["node-a", "node-b"], "drain");
        var ownerB = await cluster.LeaseOwnerOfAsync("node-b");
        await ClusterTests.DefineAsync(survivor, group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 400, burst: 20, concurrency: 20));

        var acknowledgedByB = new ConcurrentDictionary<string, DateTimeOffset>();
        var acknowledgedByA = new ConcurrentDictionary<string, DateTimeOffset>();
        using var stopSending = new CancellationTokenSource();
        var senders = new[]
        {
            stopping.SendUntilStoppedAsync(group, "b", acknowledgedByB, stopSending.Token),
            survivor.SendUntilStoppedAsync(group, "a", acknowledgedByA, stopSending.Token),
        };
        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count(c => c.Node == "node-b") >= 10, TimeSpan.FromSeconds(20), "node-b delivering");

        using var probe = new HttpClient { BaseAddress = stopping.BaseAddress };
        await stopping.SignalTerminateAsync();
        var signalledAt = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var notReadyAfter = await Eventually.ReadAsync(
            async () =>
            {
                try
                {
                    using var ready = await probe.GetAsync("/readyz");
                    return ready.StatusCode == HttpStatusCode.OK ? (TimeSpan?)null : clock.Elapsed;
                }
                catch (HttpRequestException)
                {
                    return clock.Elapsed;
                }
            },
            elapsed => elapsed is not null,
            "node-b not ready");
        await stopping.WaitForExitAsync(TimeSpan.FromSeconds(40));
        var exitedAfter = clock.Elapsed;
        var stillHeld = await cluster.ShardLeasesHeldAsync(ownerB);
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stopSending.CancelAsync();
        await Task.WhenAll(senders);

        var acknowledged = acknowledgedByA.Keys.Concat(acknowledgedByB.Keys).ToList();
        await downstream.WaitUntilAsync(
            d => acknowledged.All(new HashSet<string>(d.CallsTo($"/{group}").Select(c => c.MessageId!)).Contains),
            TimeSpan.FromSeconds(60),
            $"all {acknowledged.Count} acknowledged messages delivered");
        var calls = downstream.CallsTo($"/{group}");
        // Only what the stopping node itself acknowledged after SIGTERM: its drain must not turn ingress away.
        var duringDrain = acknowledgedByB.Values.Count(at => at > signalledAt);
        var firstBySurvivor = calls.Where(c => c.Node == "node-a").Min(c => c.ReceivedAt);
        output.WriteLine($"not ready {notReadyAfter!.Value.TotalMilliseconds:0} ms after SIGTERM, exited after {exitedAfter.TotalSeconds:0.00} s, " +
            $"{duringDrain} messages acknowledged during the drain, node-a's first call {(firstBySurvivor - signalledAt).TotalSeconds:0.00} s after SIGTERM, " +
            $"{acknowledged.Count} acknowledged, {calls.Count} calls");

        Assert.Equal(0, stopping.ExitCode);
        Assert.Equal(0, stillHeld);
        Assert.True(notReadyAfter < TimeSpan.FromSeconds(2), $"still ready {notReadyAfter} after SIGTERM");
        Assert.True(exitedAfter < TimeSpan.FromSeconds(30), $"the drain took {exitedAfter}, past the pod's grace period");
        Assert.True(firstBySurvivor - signalledAt < TimeSpan.FromSeconds(20), "the group waited for its lease to expire instead of moving");
        Assert.True(duringDrain > 0, "node-b acknowledged nothing after SIGTERM: its drain turned ingress away");
    }

    [Fact]
    public async Task Sigterm_WithAnotherMemberUp_MovesEveryShardAWaveAtATime_WhileItsGroupsRunOn_AndLosesNothing()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var cluster = await ClusterRig.CreateAsync(server);
        Dictionary<string, string> Settings(string node)
        {
            // A drain long enough for the waves (they may take a quarter of it), and the dispatcher's drain lines.
            var settings = cluster.Settings(node);
            settings["ClusterQueue:Processing:DrainTimeout"] = "00:00:20";
            settings["Logging:LogLevel:ClusterQueue.Node.Processing.GroupDispatcher"] = "Information";
            return settings;
        }

        var survivor = await cluster.StartAsync("node-a", Settings("node-a"));
        var leaving = await cluster.StartAsync("node-b", Settings("node-b"));
        string[] two = ["node-a", "node-b"];

        // Three waves' worth of node-b's shards, one group on each, with a backlog that outlasts the drain.
        var wave = Node.Processing.RendezvousAllocation.WaveOf(ClusterRig.Shards);
        var groups = Enumerable.Range(0, int.MaxValue)
            .Select(i => ClusterRig.GroupOwnedBy("node-b", two, $"wave-{i}"))
            .DistinctBy(group => Node.Cluster.ShardMap.ShardOf(group, ClusterRig.Shards))
            .Take(3 * wave)
            .ToList();
        var acknowledged = new List<string>();
        foreach (var group in groups)
        {
            await ClusterTests.DefineAsync(survivor, group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 2, burst: 1, concurrency: 1));
            for (var i = 0; i < 30; i++)
            {
                acknowledged.Add(await ClusterTests.IngestAsync(survivor, group, $"message {i}"));
            }
        }

        await downstream.WaitUntilAsync(
            d => groups.All(g => d.CallsTo($"/{g}").Any(c => c.Node == "node-b")), TimeSpan.FromSeconds(30), "every group delivering on node-b");
        var ownerB = await cluster.LeaseOwnerOfAsync("node-b");
        await leaving.SignalTerminateAsync();
        await leaving.WaitForExitAsync(TimeSpan.FromSeconds(40));
        await downstream.WaitUntilAsync(
            d => acknowledged.All(new HashSet<string>(d.Calls.Select(c => c.MessageId!)).Contains),
            TimeSpan.FromSeconds(60),
            $"all {acknowledged.Count} acknowledged messages delivered");

        var waves = System.Text.RegularExpressions.Regex.Match(leaving.Output, @"Draining: (\d+) of (\d+) shards moved to other members a wave at a time");
        output.WriteLine(waves.Success ? waves.Value : leaving.Output);
        Assert.Equal(0, leaving.ExitCode);
        Assert.Equal(0, await cluster.ShardLeasesHeldAsync(ownerB));
        Assert.True(waves.Success, "node-b logged no wait for the waves");
        Assert.True(int.Parse(waves.Groups[2].Value) >= groups.Count, $"node-b held {waves.Groups[2].Value} shards at its drain, {groups.Count} expected");
        Assert.Equal(waves.Groups[2].Value, waves.Groups[1].Value);

        // Every group went on from node-b to node-a, its calls started within burst + rate × T across the move.
        foreach (var group in groups)
        {
            Assert.Contains(downstream.CallsTo($"/{group}"), c => c.Node == "node-a");
            BucketAssert.StartsWithinBucket(group, rate: 2, burst: 1, downstream.Starts($"/{group}"));
        }
    }

    [Fact]
    public async Task EveryMemberStoppingAtOnce_EachExitsWellInsideTheDrain_AndTheNextStartDeliversEverything()
    {
        // Slow calls and a backlog: each group still has work when its shard is handed over, so each region is left
        // holding a wake-up for it, for a new home that no member can give while all of them stop.
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(300));
        await using var cluster = await ClusterRig.CreateAsync(server);
        string[] two = ["node-a", "node-b"];
        await cluster.StartAllAsync(two);
        var groups = two.SelectMany(node => Enumerable.Range(0, 3).Select(i => ClusterRig.GroupOwnedBy(node, two, $"all-stop-{i}"))).ToList();
        var acknowledged = new List<string>();
        foreach (var group in groups)
        {
            await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 20, burst: 2, concurrency: 2));
            for (var i = 0; i < 15; i++)
            {
                acknowledged.Add(await ClusterTests.IngestAsync(cluster[two[i % 2]], group, $"message {i}"));
            }
        }

        await downstream.WaitUntilAsync(d => groups.All(g => d.CallsTo($"/{g}").Count > 0), TimeSpan.FromSeconds(30), "every group delivering");

        var owners = await Task.WhenAll(two.Select(cluster.LeaseOwnerOfAsync));
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(two.Select(node => cluster[node].SignalTerminateAsync()));
        var exits = await Task.WhenAll(two.Select(async node =>
        {
            await cluster[node].WaitForExitAsync(TimeSpan.FromSeconds(90));
            return (Node: node, After: clock.Elapsed, Code: cluster[node].ExitCode);
        }));
        output.WriteLine($"delivered before the stop: {downstream.Calls.Count} of {acknowledged.Count}; " +
            string.Join(", ", exits.Select(e => $"{e.Node} exited {e.After.TotalSeconds:0.0} s after SIGTERM with {e.Code}")));

        // The drain timeout is 5 s, the sharding phase's 20 s: a region waiting for a home held its node 29.6–29.8 s. Now
        // it is stopped 3 s after its last handover; the oldest member then also waits out Akka's cluster-exiting phase
        // (10 s) for a member to take the coordinator singleton over, which none does (3.8–5.2 s and 13.5–14.0 s).
        Assert.All(exits, e => Assert.Equal(0, e.Code));
        Assert.All(exits, e => Assert.True(e.After < TimeSpan.FromSeconds(25), $"{e.Node} exited {e.After} after SIGTERM"));
        foreach (var owner in owners)
        {
            Assert.Equal(0, await cluster.ShardLeasesHeldAsync(owner));
        }

        // Nothing the stop cut short is lost: a new member takes up every group.
        foreach (var node in two)
        {
            await cluster[node].DisposeAsync();
        }

        await cluster.StartAsync("node-a");
        await downstream.WaitUntilAsync(
            d => acknowledged.All(new HashSet<string>(d.Calls.Select(c => c.MessageId!)).Contains),
            TimeSpan.FromSeconds(60),
            $"all {acknowledged.Count} acknowledged messages delivered");
    }
}
