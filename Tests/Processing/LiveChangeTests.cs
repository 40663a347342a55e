using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>PATCH and DELETE reach a group's running actor at once, without a restart.</summary>
public sealed class LiveChangeTests
{
    [Fact]
    public async Task PatchRate_WithBacklog_RaisesTheDeliveryRateAndLosesNothing()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("ramp", GroupDefinitions.Forwarding(downstream, "/ramp", rate: 1, burst: 1));
        var ids = await node.IngestManyAsync("ramp", 80);

        await downstream.WaitUntilAsync(d => d.CallsTo("/ramp").Count >= 2, TimeSpan.FromSeconds(10), "the backlog to flow at 1/s");
        using var patch = await node.Client.PatchAsJsonAsync("/v1/groups/ramp", new { ratePerSecond = 50, burst = 10 });
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        var patchedAt = DateTimeOffset.UtcNow;

        // Left at 1/s, the next 2 s would bring 2 or 3 calls; at 50/s the rest of the backlog fits in them.
        await Task.Delay(TimeSpan.FromSeconds(2.1));
        var soon = downstream.CallsTo("/ramp").Count(c => c.ReceivedAt > patchedAt && c.ReceivedAt <= patchedAt + TimeSpan.FromSeconds(2));
        Assert.True(soon >= 20, $"Only {soon} calls in the 2 s after raising the rate to 50/s.");

        var stats = await Eventually.ReadAsync(() => node.StatsAsync("ramp"), s => s.Delivered >= ids.Length && s.Queued + s.InFlight == 0, "the backlog to drain");
        Assert.Equal(((long)ids.Length, 0L), (stats.Delivered, stats.Queued + stats.InFlight));
        Assert.Equal(ids.Order(), downstream.CallsTo("/ramp").Select(c => c.MessageId!).Order());
    }

    [Fact]
    public async Task PatchMaxConcurrency_WithSlowDownstream_RaisesCallsInFlight()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(300));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("widen", GroupDefinitions.Forwarding(downstream, "/widen", rate: 1000, burst: 1000, concurrency: 1));
        await node.IngestManyAsync("widen", 20);

        await downstream.WaitUntilAsync(d => d.CallsTo("/widen").Count >= 2, TimeSpan.FromSeconds(10), "calls one at a time");
        Assert.Equal(1, downstream.MaxInFlight("/widen"));

        using var patch = await node.Client.PatchAsJsonAsync("/v1/groups/widen", new { maxConcurrency = 4 });
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);

        await downstream.WaitUntilAsync(d => d.MaxInFlight("/widen") >= 4, TimeSpan.FromSeconds(5), "four calls in flight");
        await downstream.WaitUntilAsync(d => d.CallsTo("/widen").Count >= 20, TimeSpan.FromSeconds(10), "every message called");
        Assert.Equal(4, downstream.MaxInFlight("/widen"));
    }

    [Fact]
    public async Task DeleteGroup_WithBacklog_StopsDeliveriesAndItsStatsAnswer404()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(50));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("doomed", GroupDefinitions.Forwarding(downstream, "/doomed", rate: 20, burst: 1, concurrency: 2));
        await node.IngestManyAsync("doomed", 100);

        await downstream.WaitUntilAsync(d => d.CallsTo("/doomed").Count >= 5, TimeSpan.FromSeconds(10), "deliveries under way");
        using var delete = await node.Client.DeleteAsync("/v1/groups/doomed");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var atDelete = downstream.CallsTo("/doomed").Count;

        // At 20/s another 30 calls would come in 1.5 s; at most the two in flight may still land.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var after = downstream.CallsTo("/doomed").Count - atDelete;
        Assert.True(after <= 2, $"{after} calls reached the target after the group was deleted.");

        using var stats = await node.Client.GetAsync("/v1/groups/doomed/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
        using var group = await node.Client.GetAsync("/v1/groups/doomed");
        Assert.Equal(HttpStatusCode.NotFound, group.StatusCode);
        Assert.Equal(0, node.Get<GroupDispatcher>().ActiveActors);
    }
}
