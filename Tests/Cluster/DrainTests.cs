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
}
