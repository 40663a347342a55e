using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Actors exist only for groups with work, and a restarted node picks up the work left behind.</summary>
public sealed class GroupDispatcherTests
{
    [Fact]
    public async Task IdleGroups_HaveNoActor_AndBusyGroupsRetireOnceDoneAndRefilled()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(1));
        await using var node = NodeHost.Start(new Dictionary<string, string?>
        {
            // Far longer than the wait for retirement below, so retiring cannot hinge on some lease running out.
            ["ClusterQueue:Processing:LeaseDuration"] = "00:00:30",

            // 2,000 definitions are 2,000 commits one after another; without an fsync each, a slow disk still
            // takes seconds for them, not minutes. Durability is not what this test is about.
            ["ClusterQueue:Sqlite:Synchronous"] = "Normal",
        });
        var dispatcher = node.Get<GroupDispatcher>();
        var definition = GroupDefinitions.Forwarding(downstream, "/busy", rate: 2, burst: 2, concurrency: 2);
        using (var writers = new SemaphoreSlim(16))
        {
            await Task.WhenAll(Enumerable.Range(0, 2000).Select(async i =>
            {
                await writers.WaitAsync();
                try
                {
                    await node.DefineGroupAsync($"idle-{i:0000}", definition);
                }
                finally
                {
                    writers.Release();
                }
            }));
        }

        Assert.Equal(0, dispatcher.ActiveActors);

        var busy = new[] { "idle-0007", "idle-0500", "idle-1000", "idle-1500", "idle-1999" };
        await Task.WhenAll(busy.Select(group => node.IngestOkAsync(group, "{}")));
        Assert.Equal(busy.Length, dispatcher.ActiveActors);

        foreach (var group in busy)
        {
            await Eventually.ReadAsync(() => node.StatsAsync(group), s => s.Delivered == 1, $"{group}'s message to be delivered");
        }

        // The bucket (2 tokens, 2/s) is full again before the 1 s call ends; 5 s is room for a slow machine and far
        // short of the 30 s lease.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (dispatcher.ActiveActors > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.Equal(0, dispatcher.ActiveActors);
        Assert.Equal(busy.Order(), downstream.CallsTo("/busy").Select(c => c.Group!).Order());
    }

    [Fact]
    public async Task Restart_OnTheSameDatabase_DeliversEveryAcknowledgedMessage()
    {
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(503, Body: "down for maintenance");
        string[] ids;
        await using (var first = NodeHost.Start(databasePath: database))
        {
            await first.DefineGroupAsync("survivor", GroupDefinitions.Forwarding(downstream, "/survivor", rate: 1000, burst: 1000, concurrency: 4) with
            {
                MaxAttempts = 1000,
                RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.2, MaxSeconds = 0.5 },
            });
            ids = await first.IngestManyAsync("survivor", 20);

            await downstream.WaitUntilAsync(d => d.Calls.Count >= 20, TimeSpan.FromSeconds(10), "the first attempts to fail");
        }

        downstream.Reply = _ => DownstreamReply.Ok;
        var callsBefore = downstream.Calls.Count;
        await using var second = NodeHost.Start(databasePath: database);

        await downstream.WaitUntilAsync(
            d => ids.All(d.Calls.Skip(callsBefore).Select(c => c.MessageId).Contains),
            TimeSpan.FromSeconds(10),
            "every acknowledged message called after the restart");
        foreach (var id in ids)
        {
            var status = await Eventually.ReadAsync(() => second.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State != "processing", $"{id} to settle");
            Assert.Equal("delivered", status!.State);
        }

        var stats = await second.StatsAsync("survivor");
        Assert.Equal((20L, 20L, 0L), (stats.Ingested, stats.Delivered, stats.Queued + stats.InFlight));
    }
}
