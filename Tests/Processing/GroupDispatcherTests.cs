using System.Collections.Concurrent;
using System.Net.Http.Json;
using Akka.Actor;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Ingress;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

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

    [Fact]
    public async Task ActorThatFails_IsReplacedByOneWithItsTokens_NotAFreshBurst()
    {
        using var directory = new TempDirectory();
        var time = TimeProvider.System;
        await using var database = new SqliteDatabase(
            Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = directory.File("clusterqueue.db") } }),
            NullLogger<SqliteDatabase>.Instance);
        var queue = new LeaseFaultQueue(new SqlMessageQueue(database, time));
        var registry = new GroupRegistry(new GroupStore(database, time), queue, time);
        var logs = new CapturedLogs();
        using var logging = LoggerFactory.Create(builder => builder.AddProvider(logs));
        var handler = new RecordingHandler();
        using var system = ActorSystem.Create("dispatcher-test", ActorsSetup.Settings);
        using var dispatcher = new GroupDispatcher(
            registry, queue, handler, time, Options.Create(new ProcessingOptions()), new NodeMetrics(registry), new NodeReadiness(database.Health),
            ShardOwnership.Standalone(), new OutcomeWaiters(), system, logging.CreateLogger<GroupDispatcher>());

        // Two tokens, and the next one in about 17 minutes: the test sees only what the bucket held.
        var written = await registry.PutAsync("fragile", new GroupDefinition
        {
            RatePerSecond = 0.001,
            Burst = 2,
            MaxConcurrency = 4,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        }, CancellationToken.None);
        Assert.Equal(GroupWriteOutcome.Created, written.Outcome);

        await EnqueueAsync(queue, "first");
        dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => handler.Calls.Count == 1, "the first message to take the first token");

        // The next lease fails as an out-of-memory would (the one fault the actor does not absorb): the actor, holding one
        // token, dies. Whoever replaces it must start from that token, not from a full bucket of two.
        queue.FailNextLease();
        await EnqueueAsync(queue, "second");
        await EnqueueAsync(queue, "third");
        dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => logs.Entries.Any(e => e.EventId.Id == 313), "the actor to fail");
        dispatcher.Notify("fragile");

        await Eventually.TrueAsync(() => handler.Calls.Count >= 2, "the replacement actor to spend the token left");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(["first", "second"], handler.Calls);
        Assert.Equal(1, (await queue.GetCountsAsync("fragile", CancellationToken.None))!.Queued);
        await dispatcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Actor_TakesNoMoreCallSlotsThanOneLeaseCanFill()
    {
        // SQS hands out at most 10 messages a receive. An actor that took slots for its group's whole concurrency
        // held them through the receive's long poll: a thousand groups of concurrency 64 kept a node's 1,000 slots
        // taken while a few dozen receives waited, and the drain of a backlog crawled.
        using var directory = new TempDirectory();
        var time = TimeProvider.System;
        await using var database = new SqliteDatabase(
            Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = directory.File("clusterqueue.db") } }),
            NullLogger<SqliteDatabase>.Instance);
        var queue = new LeaseFaultQueue(new SqlMessageQueue(database, time), leaseLimit: 3);
        var registry = new GroupRegistry(new GroupStore(database, time), queue, time);
        var handler = new RecordingHandler();
        using var system = ActorSystem.Create("dispatcher-test", ActorsSetup.Settings);
        using var dispatcher = new GroupDispatcher(
            registry, queue, handler, time, Options.Create(new ProcessingOptions()), new NodeMetrics(registry), new NodeReadiness(database.Health),
            ShardOwnership.Standalone(), new OutcomeWaiters(), system, NullLogger<GroupDispatcher>.Instance);
        var written = await registry.PutAsync("fragile", new GroupDefinition
        {
            RatePerSecond = 1000,
            Burst = 1000,
            MaxConcurrency = 64,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        }, CancellationToken.None);
        Assert.Equal(GroupWriteOutcome.Created, written.Outcome);

        var ids = Enumerable.Range(0, 20).Select(i => $"m{i:00}").ToArray();
        foreach (var id in ids)
        {
            await EnqueueAsync(queue, id);
        }

        dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => handler.Calls.Count == ids.Length, "every message to be delivered");
        Assert.Equal(ids, handler.Calls.Order());
        Assert.Equal(3, queue.LargestLeaseAsked);
        await dispatcher.StopAsync(CancellationToken.None);
    }

    private static async Task EnqueueAsync(IMessageQueue queue, string id)
    {
        var result = await queue.EnqueueAsync(new NewMessage(id, "fragile", "application/json", "{}"u8.ToArray(), null, default), CancellationToken.None);
        Assert.Equal(EnqueueOutcome.Accepted, result.Outcome);
    }

    /// <summary>Delivers every message at once and remembers their ids in call order.</summary>
    private sealed class RecordingHandler : IMessageHandler
    {
        private readonly ConcurrentQueue<string> _calls = new();

        public IReadOnlyList<string> Calls => [.. _calls];

        public Task<HandlerOutcome> HandleAsync(Delivery delivery, CancellationToken cancellationToken)
        {
            _calls.Enqueue(delivery.Message.Id);
            return Task.FromResult<HandlerOutcome>(HandlerOutcome.Success);
        }
    }

    /// <summary>
    /// The store queue, except that a lease can be made to fail once with an out-of-memory error, its lease limit can be
    /// lowered (as SQS's is), and it remembers the most a lease asked for.
    /// </summary>
    private sealed class LeaseFaultQueue(IMessageQueue inner, int? leaseLimit = null) : IMessageQueue
    {
        private int _failNext;
        private int _largestAsked;

        public void FailNextLease() => Volatile.Write(ref _failNext, 1);

        public int LargestLeaseAsked => Volatile.Read(ref _largestAsked);

        public int LeaseLimit => leaseLimit ?? inner.LeaseLimit;

        public Task<LeaseBatch> LeaseAsync(string groupId, int max, TimeSpan leaseDuration, CancellationToken cancellationToken)
        {
            var largest = Volatile.Read(ref _largestAsked);
            while (max > largest && Interlocked.CompareExchange(ref _largestAsked, max, largest) != largest)
            {
                largest = Volatile.Read(ref _largestAsked);
            }

            return Interlocked.Exchange(ref _failNext, 0) == 1
                ? throw new OutOfMemoryException("a lease that could not be read into memory")
                : inner.LeaseAsync(groupId, Math.Min(max, LeaseLimit), leaseDuration, cancellationToken);
        }

        public Task PrepareGroupAsync(string groupId, TimeSpan handlerTimeout, CancellationToken cancellationToken) => inner.PrepareGroupAsync(groupId, handlerTimeout, cancellationToken);

        public Task RemoveGroupAsync(string groupId, CancellationToken cancellationToken) => inner.RemoveGroupAsync(groupId, cancellationToken);

        public Task<IReadOnlyList<string>> RecoverAsync(IReadOnlyCollection<GroupSettings> groups, CancellationToken cancellationToken) => inner.RecoverAsync(groups, cancellationToken);

        public Task<EnqueueResult> EnqueueAsync(NewMessage message, CancellationToken cancellationToken) => inner.EnqueueAsync(message, cancellationToken);

        public Task<bool> ExtendAsync(LeasedMessage message, TimeSpan leaseDuration, CancellationToken cancellationToken) => inner.ExtendAsync(message, leaseDuration, cancellationToken);

        public Task<bool> CompleteAsync(LeasedMessage message, CancellationToken cancellationToken) => inner.CompleteAsync(message, cancellationToken);

        public Task<bool> CompleteAsync(LeasedMessage message, DeliveryResult? result, CancellationToken cancellationToken) => inner.CompleteAsync(message, result, cancellationToken);

        public Task<bool> ContinueAsync(LeasedMessage message, string cursor, int status, CancellationToken cancellationToken) => inner.ContinueAsync(message, cursor, status, cancellationToken);

        public Task<bool> RetryAsync(LeasedMessage message, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken, AttemptReport? report = null) =>
            inner.RetryAsync(message, visibleAt, error, kind, cancellationToken, report);

        public Task<bool> ReleaseAsync(LeasedMessage message, CancellationToken cancellationToken) => inner.ReleaseAsync(message, cancellationToken);

        public Task<bool> DeadLetterAsync(LeasedMessage message, string error, CancellationToken cancellationToken, AttemptReport? report = null) =>
            inner.DeadLetterAsync(message, error, cancellationToken, report);

        public Task<int> RedriveAsync(string groupId, DeadLetterSelection selection, CancellationToken cancellationToken) => inner.RedriveAsync(groupId, selection, cancellationToken);

        public Task<int> PurgeDeadLettersAsync(string? groupId, DeadLetterSelection selection, CancellationToken cancellationToken) => inner.PurgeDeadLettersAsync(groupId, selection, cancellationToken);

        public Task<DeadLetterList> ListDeadLettersAsync(string groupId, string? after, int limit, CancellationToken cancellationToken) => inner.ListDeadLettersAsync(groupId, after, limit, cancellationToken);

        public Task<MessageStatus?> GetStatusAsync(string messageId, CancellationToken cancellationToken) => inner.GetStatusAsync(messageId, cancellationToken);

        public Task<QueueCounts?> GetCountsAsync(string groupId, CancellationToken cancellationToken) => inner.GetCountsAsync(groupId, cancellationToken);

        public Task<int> PurgeQueueAsync(string groupId, CancellationToken cancellationToken) => inner.PurgeQueueAsync(groupId, cancellationToken);

        public Task<IReadOnlyDictionary<string, QueueDepth>> GetDepthsAsync(CancellationToken cancellationToken) => inner.GetDepthsAsync(cancellationToken);

        public Task<IReadOnlyList<string>> GroupsWithPendingAsync(CancellationToken cancellationToken) => inner.GroupsWithPendingAsync(cancellationToken);

        public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, CancellationToken cancellationToken) => inner.PurgeExpiredAsync(deliveredBefore, cancellationToken);
    }
}
