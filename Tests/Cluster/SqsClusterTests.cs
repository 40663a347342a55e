using System.Collections.Concurrent;
using ClusterQueue.Tests.Support;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Cluster;

/// <summary>The cluster with SQS carrying the messages and PostgreSQL holding the rest: real emulator, real database, node processes.</summary>
public sealed class SqsClusterTests(PostgresServer server, SqsEmulator emulator, ITestOutputHelper output) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    private static readonly string[] Three = ["node-a", "node-b", "node-c"];

    [Fact]
    public async Task ThreeNodesOnSqs_OwnerDeliversAtTheGroupsRate_AndAfterItsKillEveryAcknowledgedMessageIsDelivered()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var cluster = await ClusterRig.CreateAsync(server);
        var prefix = SqsNode.UniquePrefix();
        foreach (var node in Three)
        {
            var settings = cluster.Settings(node);
            foreach (var (key, value) in SqsNode.ProcessSettings(emulator.Endpoint, prefix))
            {
                settings[key] = value;
            }

            await cluster.StartAsync(node, settings);
        }

        var group = ClusterRig.GroupOwnedBy("node-c", Three, "sqs");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 20, burst: 5, concurrency: 4));
        var acknowledged = new ConcurrentDictionary<string, DateTimeOffset>();
        using var stop = new CancellationTokenSource();
        var sending = cluster["node-b"].SendUntilStoppedAsync(group, "b", acknowledged, stop.Token);
        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count >= 20, TimeSpan.FromSeconds(30), "deliveries by the owner");

        await cluster["node-c"].KillAsync();
        var killedAt = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stop.CancelAsync();
        await sending;

        await downstream.WaitUntilAsync(
            d => acknowledged.Keys.All(new HashSet<string>(d.CallsTo($"/{group}").Select(c => c.MessageId!)).Contains),
            TimeSpan.FromSeconds(60),
            $"all {acknowledged.Count} acknowledged messages delivered");
        var calls = downstream.CallsTo($"/{group}");
        var before = calls.Where(c => c.ReceivedAt < killedAt).ToList();
        var recoveredAt = calls.Where(c => c.Node != "node-c").Min(c => c.ReceivedAt);
        output.WriteLine($"acknowledged {acknowledged.Count}, calls {calls.Count}, duplicate calls {calls.Count - calls.Select(c => c.MessageId).Distinct().Count()}, " +
            $"delivered again {(recoveredAt - killedAt).TotalSeconds:0.00} s after kill -9");

        Assert.All(before, c => Assert.Equal("node-c", c.Node));
        Assert.True(recoveredAt > killedAt, "another node delivered while node-c still owned the group");
        BucketAssert.WithinBucket(group, 20, 5, [.. calls.Select(c => c.ReceivedAt).Order()], TimeSpan.FromMilliseconds(150));
    }
}
