using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Semantics 4 (a group never has more than maxConcurrency calls in flight) and 5 (a message is in at most one call at a time).</summary>
public sealed class ConcurrencyTests
{
    [Fact]
    public async Task SlowDownstream_WithMaxConcurrency3_HasExactlyThreeCallsInFlight()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(200));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("three", GroupDefinitions.Forwarding(downstream, "/three", rate: 1000, burst: 1000, concurrency: 3));

        await node.IngestManyAsync("three", 30);

        await downstream.WaitUntilAsync(d => d.CallsTo("/three").Count == 30, TimeSpan.FromSeconds(15), "30 calls");
        await WaitForDeliveredAsync(node, "three", 30);
        Assert.Equal(3, downstream.MaxInFlight("/three"));
    }

    [Fact]
    public async Task ManyBusyGroups_StayWithinTheNodesCallSlots_AndAllAreDelivered()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(50));
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Processing:MaxCallsInFlight"] = "5" });
        string[] groups = [.. Enumerable.Range(0, 8).Select(i => $"busy{i}")];
        foreach (var id in groups)
        {
            await node.DefineGroupAsync(id, GroupDefinitions.Forwarding(downstream, $"/{id}", rate: 1000, burst: 1000, concurrency: 4));
        }

        // 8 groups that could each run 4 calls: 32 at once without the node's cap of 5.
        await Task.WhenAll(groups.Select(id => node.IngestManyAsync(id, 15)));

        await downstream.WaitUntilAsync(d => groups.All(id => d.CallsTo($"/{id}").Count >= 15), TimeSpan.FromSeconds(30), "15 calls to every group");
        foreach (var id in groups)
        {
            await WaitForDeliveredAsync(node, id, 15);
        }

        Assert.InRange(downstream.MaxInFlightOverall, 2, 5);
        // A call's slot comes back just after its outcome is recorded: every slot is free again once the last ones finish.
        await Eventually.ReadAsync(() => node.Client.GetStringAsync("/metrics"), m => Exposition.Value(m, "clusterqueue_handler_calls_in_flight") == 0, "every call slot free again");
    }

    [Fact]
    public async Task MaxConcurrency1_CallsAreStrictlySequential()
    {
        var handling = TimeSpan.FromMilliseconds(100);
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: handling);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("one", GroupDefinitions.Forwarding(downstream, "/one", rate: 1000, burst: 1000, concurrency: 1));

        await node.IngestManyAsync("one", 10);

        await downstream.WaitUntilAsync(d => d.CallsTo("/one").Count == 10, TimeSpan.FromSeconds(15), "10 calls");
        await WaitForDeliveredAsync(node, "one", 10);
        Assert.Equal(1, downstream.MaxInFlight("/one"));

        // Each call starts only after the previous one took its 100 ms (less a little timer granularity).
        var arrivals = downstream.CallsTo("/one").Select(c => c.ReceivedAt).Order().ToList();
        var gaps = arrivals.Zip(arrivals.Skip(1), (a, b) => b - a).ToList();
        Assert.All(gaps, gap => Assert.True(gap >= handling - TimeSpan.FromMilliseconds(10), $"Two calls started {gap.TotalMilliseconds:0} ms apart."));
    }

    [Fact]
    public async Task HandlerSlowerThanTheLease_KeepsItsLease_SoNoMessageIsCalledTwiceAtOnce()
    {
        var handling = TimeSpan.FromSeconds(4);
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: handling);

        // A lease far shorter than a call: only its extension keeps the message from being leased again meanwhile.
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Processing:LeaseDuration"] = "00:00:01.5" });

        // Free slots and tokens to spare, so the actor would take an expired message again at once.
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow", rate: 1000, burst: 1000, concurrency: 10));
        var ids = await node.IngestManyAsync("slow", 3);

        // Past the point where every first call has ended: an expired lease would have brought a second call by now.
        await downstream.WaitUntilAsync(d => d.CallsTo("/slow").Count >= 3, TimeSpan.FromSeconds(10), "the three first calls");
        await Task.Delay(handling + TimeSpan.FromSeconds(0.5));

        var calls = downstream.CallsTo("/slow");
        foreach (var byMessage in calls.GroupBy(c => c.MessageId))
        {
            var starts = byMessage.Select(c => c.ReceivedAt).Order().ToList();
            Assert.All(starts.Zip(starts.Skip(1), (first, second) => second - first), gap => Assert.True(gap >= handling, $"Message {byMessage.Key} was called again while its first call was running."));
        }

        Assert.Equal(ids.Order(), calls.Select(c => c.MessageId!).Order());
        await WaitForDeliveredAsync(node, "slow", 3);
    }

    private static async Task WaitForDeliveredAsync(NodeHost node, string group, int count)
        => await Eventually.ReadAsync(() => node.StatsAsync(group), s => s.Delivered >= count, $"{count} messages delivered", TimeSpan.FromSeconds(15));
}
