using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>
/// Semantics 1 and 2 against a real process: whatever was acknowledged with 202 survives SIGKILL at any moment
/// (mid-ingest, mid-delivery) and is delivered after a restart on the same data.
/// </summary>
public sealed class CrashRecoveryTests
{
    private static readonly Dictionary<string, string> ShortLease = new()
    {
        // Messages that were in flight at the crash come back when their lease expires; keep that short for the test.
        ["ClusterQueue:Processing:LeaseDuration"] = "00:00:02",
    };

    [Fact]
    public async Task KillDuringIngestAndDelivery_ThenRestart_DeliversEveryAcknowledgedMessage()
    {
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(30));
        var acknowledged = new ConcurrentDictionary<string, DateTimeOffset>();

        // Two crashes: the second one lands while the restarted node is still recovering the first one's backlog.
        for (var round = 0; round < 2; round++)
        {
            await using var node = await NodeProcess.StartAsync(database, ShortLease);
            if (round == 0)
            {
                using var put = await node.Client.PutAsJsonAsync("/v1/groups/crash", GroupDefinitions.Forwarding(downstream, "/crash", rate: 300, burst: 20, concurrency: 8));
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            }

            using var stopIngest = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 4).Select(sender => node.SendUntilStoppedAsync("crash", $"round {round} sender {sender}", acknowledged, stopIngest.Token)).ToArray();
            var target = acknowledged.Count + 300;
            await Eventually.TrueAsync(() => acknowledged.Count >= target && downstream.CallsTo("/crash").Count > 0, "acknowledged messages and deliveries under way", TimeSpan.FromSeconds(60));

            await node.KillAsync();
            await stopIngest.CancelAsync();
            await Task.WhenAll(senders);
        }

        await using var survivor = await NodeProcess.StartAsync(database, ShortLease);
        await Eventually.TrueAsync(() => acknowledged.Keys.All(DeliveredIds(downstream).Contains), "every acknowledged message delivered after the restarts", TimeSpan.FromSeconds(90));

        Assert.True(acknowledged.Count >= 600, $"Only {acknowledged.Count} messages were acknowledged.");
        var missing = acknowledged.Keys.Except(DeliveredIds(downstream)).ToList();
        Assert.Empty(missing);

        // The durable counters agree: nothing left queued, and at least every acknowledged message counted as delivered.
        var stats = await Eventually.ReadAsync(
            async () => (await survivor.Client.GetFromJsonAsync<GroupStats>("/v1/groups/crash/stats"))!,
            s => s.Queued + s.InFlight == 0,
            "the queue to drain",
            TimeSpan.FromSeconds(30));
        Assert.True(stats.Delivered >= acknowledged.Count, $"delivered {stats.Delivered} < acknowledged {acknowledged.Count}");
    }

    [Fact]
    public async Task SigtermWithCallsInFlight_FinishesThemAndExits_ThenRestartDeliversTheRestOnce()
    {
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(1));
        var settings = new Dictionary<string, string>(ShortLease) { ["ClusterQueue:Processing:DrainTimeout"] = "00:00:10" };

        var ids = new List<string>();
        await using (var node = await NodeProcess.StartAsync(database, settings))
        {
            using var put = await node.Client.PutAsJsonAsync("/v1/groups/drain", GroupDefinitions.Forwarding(downstream, "/drain", rate: 100, burst: 100, concurrency: 4));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            for (var i = 0; i < 10; i++)
            {
                using var response = await node.Client.PostAsync("/hooks/drain", new StringContent($"m{i}"));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                ids.Add((await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId);
            }

            await Eventually.TrueAsync(() => downstream.CallsTo("/drain").Count >= 4, "four calls in flight", TimeSpan.FromSeconds(10));
            await node.TerminateAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(0, node.ExitCode);
        }

        var startedBeforeStop = downstream.CallsTo("/drain").Select(c => c.MessageId).ToHashSet();
        await using var restarted = await NodeProcess.StartAsync(database, settings);
        await Eventually.TrueAsync(() => ids.All(DeliveredIds(downstream).Contains), "every message delivered", TimeSpan.FromSeconds(30));

        // The calls that were running at SIGTERM finished and were recorded as delivered, so none of them is repeated.
        var calls = downstream.CallsTo("/drain");
        foreach (var id in startedBeforeStop)
        {
            Assert.Single(calls, c => c.MessageId == id);
        }

        Assert.Equal(ids.Count, calls.Select(c => c.MessageId).Distinct().Count());
    }

    private static HashSet<string> DeliveredIds(Downstream downstream) =>
        downstream.Calls.Select(c => c.MessageId!).ToHashSet();
}
