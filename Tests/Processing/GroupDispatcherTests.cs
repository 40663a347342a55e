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

        // The wake-ups reach the shard region at once and the actors start there a moment later; each holds its 1 s call.
        var started = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (dispatcher.ActiveActors < busy.Length && DateTime.UtcNow < started)
        {
            await Task.Delay(10);
        }

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
    public async Task Restart_OnTheSameDatabase_TheGroupResumesAtTheRateItHadLowered()
    {
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");
        await using var downstream = await Downstream.StartAsync();
        var refusals = 2;
        downstream.Reply = _ => Interlocked.Decrement(ref refusals) >= 0 ? new DownstreamReply(429, Body: "slow down") : DownstreamReply.Ok;
        var careful = GroupDefinitions.Forwarding(downstream, "/careful", rate: 8, burst: 8, concurrency: 1) with
        {
            MaxAttempts = 10,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.1, MaxSeconds = 0.2 },

            // Two refusals in a row halve the rate; successes raise it by a thousandth per second, which the test never sees.
            AdaptiveRate = new AdaptiveRateDefinition { Enabled = true, DecreaseFactor = 0.5, IncreasePerSecond = 0.001, MinRatePerSecond = 1 },
        };
        await using (var first = NodeHost.Start(databasePath: database))
        {
            await first.DefineGroupAsync("careful", careful);
            await first.IngestManyAsync("careful", 2);
            await Eventually.ReadAsync(() => first.StatsAsync("careful"), s => s.Delivered == 2, "both messages delivered after the refusals");
        }

        // The actor retired or was drained, and saved its lowered rate with its bucket; a fresh actor would be at 8/s.
        downstream.Reply = _ => DownstreamReply.Ok with { Delay = TimeSpan.FromSeconds(3) };
        await using var second = NodeHost.Start(databasePath: database);
        await second.IngestManyAsync("careful", 1);
        var resumed = await Eventually.ReadAsync(() => second.StatsAsync("careful"), s => s.InFlight == 1, "the next message in flight on the restarted node");
        Assert.Equal(4, resumed.EffectiveRatePerSecond!.Value, precision: 2);
    }

    [Fact]
    public async Task SavedStateThatCannotBeRead_TheActorStartsWithAnEmptyBucket_NotAFullOne()
    {
        // The snapshot store never answers. A full bucket (3) would start three calls at once; an empty one at this
        // rate starts none for about 17 minutes.
        await using var rig = await DispatcherRig.StartAsync(rate: 0.001, burst: 3, concurrency: 4, actorSettings: SilentSnapshotStore.Settings);
        var (queue, dispatcher, handler) = (rig.Queue, rig.Dispatcher, rig.Handler);
        await EnqueueAsync(queue, "first");
        await EnqueueAsync(queue, "second");
        dispatcher.Notify("fragile");

        await Eventually.TrueAsync(() => rig.Logs.Entries.Any(e => e.EventId.Id == 316), "the actor to give up on its saved state", GroupStateStore.OperationTimeout + TimeSpan.FromSeconds(10));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Empty(handler.Calls);
        Assert.Equal(1, dispatcher.ActiveActors);
        Assert.Equal(0, (await dispatcher.InspectAsync("fragile"))!.Tokens, precision: 1);
    }

    [Fact]
    public async Task ActorThatFails_IsReplacedByOneWithItsTokens_NotAFreshBurst()
    {
        // Two tokens, and the next one in about 17 minutes: the test sees only what the bucket held.
        await using var rig = await DispatcherRig.StartAsync(rate: 0.001, burst: 2, concurrency: 4);
        var (queue, dispatcher, handler) = (rig.Queue, rig.Dispatcher, rig.Handler);

        await EnqueueAsync(queue, "first");
        dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => handler.Calls.Count == 1, "the first message to take the first token");

        // The next lease fails as an out-of-memory would (the one fault the actor does not absorb): the actor, holding one
        // token, dies. Whoever replaces it must start from that token, not from a full bucket of two.
        queue.FailNextLease();
        await EnqueueAsync(queue, "second");
        await EnqueueAsync(queue, "third");
        dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => rig.Logs.Entries.Any(e => e.EventId.Id == 313), "the actor to fail");
        dispatcher.Notify("fragile");

        await Eventually.TrueAsync(() => handler.Calls.Count >= 2, "the replacement actor to spend the token left");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(["first", "second"], handler.Calls);
        Assert.Equal(1, (await queue.GetCountsAsync("fragile", CancellationToken.None))!.Queued);
    }

    [Fact]
    public async Task ShardLostToTheWatchdog_ItsCallsEndAtOnce_WithoutWaitingForTheShardToStopTheActor()
    {
        // Akka's shard stops its actors only once the lease's lost callback has reached it; a node that stalls in between
        // would go on calling past its lease's safety margin. Nothing here tells a shard of the loss, so only the
        // tenure's own end can stop the call. A rate this low keeps the actor from retiring meanwhile.
        var ownership = ShardOwnership.Clustered(new ClusterOptions().Shards);
        var shard = ownership.ShardOf("fragile");
        ownership.Grant(new ShardGrant(shard, "node-test", 1, null));
        await using var rig = await DispatcherRig.StartAsync(rate: 0.001, burst: 2, concurrency: 4, ownership: ownership);
        rig.Handler.Hang = true;
        await EnqueueAsync(rig.Queue, "first");
        rig.Dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => rig.Handler.Calls.Count == 1, "the call to start");

        new ShardLeaseEvents(ownership, TimeProvider.System, NullLogger<ShardLeaseEvents>.Instance)
            .Ended(new Node.Cluster.Leases.LeaseTenure(ShardOwnership.LeasePrefix + shard, "node-test", 1));

        await Eventually.TrueAsync(() => rig.Handler.Cancelled == 1, "the call to be cancelled");
        await Eventually.ReadAsync(
            () => rig.Queue.GetCountsAsync("fragile", CancellationToken.None),
            counts => counts!.Queued == 1 && counts.Delivered == 0,
            "the message to be back in the queue");
        Assert.Single(rig.Handler.Calls);
    }

    [Fact]
    public async Task Drain_LogsHowLongEachActorTookToFinishItsCallsAndStoreItsState()
    {
        // Two tokens and the next in about 17 minutes: after one call the bucket is not a fresh one, so the drain saves it.
        await using var rig = await DispatcherRig.StartAsync(rate: 0.001, burst: 2, concurrency: 4);
        await EnqueueAsync(rig.Queue, "first");
        rig.Dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => rig.Handler.Calls.Count == 1, "the call");

        await rig.Dispatcher.StopAsync(CancellationToken.None);

        var line = Assert.Single(rig.Logs.Entries, e => e.EventId.Id == 318);
        Assert.Equal(LogLevel.Debug, line.Level);
        Assert.Matches("^Group fragile stopped for a handoff or drain: its calls finished [0-9]+ ms after the stop, its state was stored [0-9]+ ms after that$", line.Message);
    }

    [Fact]
    public async Task Actor_TakesNoMoreCallSlotsThanOneLeaseCanFill()
    {
        // SQS hands out at most 10 messages a receive. An actor that took slots for its group's whole concurrency
        // held them through the receive's long poll: a thousand groups of concurrency 64 kept a node's 1,000 slots
        // taken while a few dozen receives waited, and the drain of a backlog crawled.
        await using var rig = await DispatcherRig.StartAsync(rate: 1000, burst: 1000, concurrency: 64, leaseLimit: 3);

        var ids = Enumerable.Range(0, 20).Select(i => $"m{i:00}").ToArray();
        foreach (var id in ids)
        {
            await EnqueueAsync(rig.Queue, id);
        }

        rig.Dispatcher.Notify("fragile");
        await Eventually.TrueAsync(() => rig.Handler.Calls.Count == ids.Length, "every message to be delivered");
        Assert.Equal(ids, rig.Handler.Calls.Order());
        Assert.Equal(3, rig.Queue.LargestLeaseAsked);
    }

    /// <summary>
    /// A dispatcher on its own SQLite file and actor system, over a <see cref="LeaseFaultQueue"/>, with one group
    /// ("fragile") defined and a <see cref="RecordingHandler"/> for its calls. Disposing stops the dispatcher first.
    /// </summary>
    private sealed class DispatcherRig : IAsyncDisposable
    {
        private readonly TempDirectory _directory = new();
        private SqliteDatabase? _database;
        private ILoggerFactory? _logging;
        private ActorSystem? _system;

        public CapturedLogs Logs { get; } = new();

        public RecordingHandler Handler { get; } = new();

        public LeaseFaultQueue Queue { get; private set; } = null!;

        public GroupDispatcher Dispatcher { get; private set; } = null!;

        public static async Task<DispatcherRig> StartAsync(
            double rate, int burst, int concurrency, int? leaseLimit = null, Akka.Configuration.Config? actorSettings = null, ShardOwnership? ownership = null)
        {
            var rig = new DispatcherRig();
            var time = TimeProvider.System;
            rig._database = new SqliteDatabase(
                Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = rig._directory.File("clusterqueue.db") } }),
                NullLogger<SqliteDatabase>.Instance);
            rig.Queue = new LeaseFaultQueue(new SqlMessageQueue(rig._database, time), leaseLimit);
            var registry = new GroupRegistry(new GroupStore(rig._database, time), rig.Queue, time);
            rig._logging = LoggerFactory.Create(builder => builder.AddProvider(rig.Logs).SetMinimumLevel(LogLevel.Debug));
            rig._system = actorSettings is null
                ? ShardedSystem.Create("dispatcher-test", rig._directory.File("clusterqueue.db"))
                : ActorSystem.Create("dispatcher-test", actorSettings.WithFallback(ShardedSystem.Settings));
            rig.Dispatcher = new GroupDispatcher(
                registry, rig.Queue, rig.Handler, time, Options.Create(new ProcessingOptions()), Options.Create(new ClusterOptions()), new NodeMetrics(registry),
                new NodeReadiness(rig._database.Health), ownership ?? ShardOwnership.Standalone(), new OutcomeWaiters(),
                rig._logging.CreateLogger<GroupDispatcher>());
            await ShardedSystem.StartShardsAsync(rig._system, rig.Dispatcher);

            var written = await registry.PutAsync("fragile", new GroupDefinition
            {
                RatePerSecond = rate,
                Burst = burst,
                MaxConcurrency = concurrency,
                Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
            }, CancellationToken.None);
            Assert.Equal(GroupWriteOutcome.Created, written.Outcome);
            return rig;
        }

        public async ValueTask DisposeAsync()
        {
            await Dispatcher.StopAsync(CancellationToken.None);
            Dispatcher.Dispose();
            _system?.Dispose();
            _logging?.Dispose();
            if (_database is not null)
            {
                await _database.DisposeAsync();
            }

            _directory.Dispose();
        }
    }

    private static async Task EnqueueAsync(IMessageQueue queue, string id)
    {
        var result = await queue.EnqueueAsync(new NewMessage(id, "fragile", "application/json", "{}"u8.ToArray(), null, default), CancellationToken.None);
        Assert.Equal(EnqueueOutcome.Accepted, result.Outcome);
    }

    /// <summary>Delivers every message at once (or, with <see cref="Hang"/>, never) and remembers their ids in call order.</summary>
    private sealed class RecordingHandler : IMessageHandler
    {
        private readonly ConcurrentQueue<string> _calls = new();
        private int _cancelled;

        public IReadOnlyList<string> Calls => [.. _calls];

        /// <summary>Calls run until they are cancelled.</summary>
        public bool Hang { get; set; }

        public int Cancelled => Volatile.Read(ref _cancelled);

        public async Task<HandlerOutcome> HandleAsync(Delivery delivery, CancellationToken cancellationToken)
        {
            _calls.Enqueue(delivery.Message.Id);
            if (Hang)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _cancelled);
                    throw;
                }
            }

            return HandlerOutcome.Success;
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
