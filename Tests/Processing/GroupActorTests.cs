using Akka.Actor;
using Akka.Cluster.Sharding;
using System.Collections.Concurrent;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Ingress;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Processing;

/// <summary>
/// The group actor's behaviour on its own actor system (the TestKit's), a real SQLite queue and a clock that moves
/// only when the test moves it: the bucket, the concurrency limit, retirement and the drain.
/// </summary>
public sealed class GroupActorTests : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    // Long enough for a loaded machine to let the actor act on what it was told; nothing here waits on it to pass.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(700);

    private readonly TempDirectory _directory;
    private readonly FakeTimeProvider _time = new();
    private readonly HeldHandler _handler;
    private SqliteDatabase _database = null!;
    private IMessageQueue _queue = null!;
    private GroupRegistry _registry = null!;
    private GroupDispatcher _dispatcher = null!;

    public GroupActorTests()
        : this(new TempDirectory())
    {
    }

    // The actor system saves group states in the test's own store file, so it is named before the system starts.
    private GroupActorTests(TempDirectory directory)
        : base(ShardedSystem.SettingsOn(directory.File(StoreFile)), nameof(GroupActorTests))
    {
        _directory = directory;
        _handler = new HeldHandler(_time);
    }

    private const string StoreFile = "clusterqueue.db";

    public async Task InitializeAsync()
    {
        _database = new SqliteDatabase(
            Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File(StoreFile) } }),
            NullLogger<SqliteDatabase>.Instance);
        _queue = new SqlMessageQueue(_database, _time);
        _registry = new GroupRegistry(new GroupStore(_database, _time), _queue, _time);
        _dispatcher = new GroupDispatcher(
            _registry, _queue, _handler, _time, Options.Create(new ProcessingOptions()), Options.Create(new ClusterOptions()), new NodeMetrics(_registry),
            new NodeReadiness(_database.Health), ShardOwnership.Standalone(), new OutcomeWaiters(), NullLogger<GroupDispatcher>.Instance);
        await ShardedSystem.StartShardsAsync(Sys, _dispatcher);
    }

    public async Task DisposeAsync()
    {
        _handler.FinishAll();
        await _dispatcher.StopAsync(CancellationToken.None);
        _dispatcher.Dispose();
        await _database.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Bucket_StartsTheBurstAtOnce_ThenOneCallPerTokenAsTimePasses()
    {
        await DefineAsync("paced", rate: 10, burst: 3, concurrency: 100);
        await EnqueueAsync("paced", 10);

        _dispatcher.Notify("paced");
        await StartedExactlyAsync(3);

        // One token every 100 ms: a tenth of a second gives one call, and the clock standing still gives no more.
        _time.Advance(TimeSpan.FromMilliseconds(100));
        await StartedExactlyAsync(4);

        _time.Advance(TimeSpan.FromMilliseconds(250));
        await StartedExactlyAsync(6);
        Assert.All(_handler.StartTimes.Skip(4), at => Assert.True(at >= _handler.StartTimes[0] + TimeSpan.FromMilliseconds(200), $"a call started at {at:O}, before its token"));
    }

    [Fact]
    public async Task Concurrency_NoMoreCallsInFlightThanTheLimit_AndTheNextStartsAsOneEnds()
    {
        _handler.Hold = true;
        await DefineAsync("narrow", rate: 1000, burst: 1000, concurrency: 2);
        await EnqueueAsync("narrow", 5);

        _dispatcher.Notify("narrow");
        await StartedExactlyAsync(2);
        Assert.Equal(2, (await _dispatcher.InspectAsync("narrow"))!.InFlight);

        _handler.FinishOne();
        await StartedExactlyAsync(3);
        Assert.Equal(2, (await _dispatcher.InspectAsync("narrow"))!.InFlight);
    }

    [Fact]
    public async Task IdleActor_RetiresOnlyOnceItsBucketIsFullAgain()
    {
        await DefineAsync("refill", rate: 1, burst: 2, concurrency: 4);
        await EnqueueAsync("refill", 2);

        _dispatcher.Notify("refill");
        await UntilAsync(() => _handler.Finished == 2);

        // Nothing pending and nothing in flight, but the bucket is empty: a new actor would start full and allow a
        // second burst, so this one stays until the two tokens are back.
        await Task.Delay(Settle);
        Assert.Equal(1, _dispatcher.ActiveActors);
        _time.Advance(TimeSpan.FromSeconds(1));
        await Task.Delay(Settle);
        Assert.Equal(1, _dispatcher.ActiveActors);
        Assert.Equal(1, (await _dispatcher.InspectAsync("refill"))!.Tokens, precision: 6);

        _time.Advance(TimeSpan.FromSeconds(1));
        await UntilAsync(() => _dispatcher.ActiveActors == 0);
        Assert.Null(await _dispatcher.InspectAsync("refill"));
        Assert.Equal(2, _handler.Started);
    }

    [Fact]
    public async Task Drain_WaitsForTheCallsInFlight_AndStartsNothingMore()
    {
        _handler.Hold = true;
        await DefineAsync("draining", rate: 1000, burst: 1000, concurrency: 2);
        await EnqueueAsync("draining", 4);
        _dispatcher.Notify("draining");
        await UntilAsync(() => _handler.Started == 2);

        // The drain's timeout runs on the test's clock, which stands still: only the calls can end it.
        var drained = _dispatcher.StopAsync(CancellationToken.None);
        await Task.Delay(Settle);
        Assert.False(drained.IsCompleted);

        _handler.FinishOne();
        await Task.Delay(Settle);
        Assert.False(drained.IsCompleted);
        Assert.Equal(2, _handler.Started);

        _handler.FinishOne();
        await drained.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, _dispatcher.ActiveActors);
        Assert.Equal(2, _handler.Started);
        var counts = await _queue.GetCountsAsync("draining", CancellationToken.None);
        Assert.Equal((2L, 2L), (counts!.Delivered, counts.Queued));
    }

    [Fact]
    public async Task Stopped_WithItsTokensSpent_SavesThem_AndTheGroupsNextActorStartsFromThem()
    {
        // The Stop a shard sends its actors as it moves away: the bucket is empty, which the next actor must know.
        await SpendTheBurstThenStopAsync("moving", burst: 5);

        // The next actor starts from the 0 tokens saved plus what accrued (nothing: the clock stands still), not from a
        // second burst of 5.
        await EnqueueAsync("moving", 5, first: 5);
        _dispatcher.Notify("moving");
        await UntilAsync(() => _dispatcher.ActiveActors == 1);
        await Task.Delay(Settle);
        Assert.Equal(5, _handler.Started);
        _time.Advance(TimeSpan.FromSeconds(2));
        await StartedExactlyAsync(7);

        // Once its bucket is full again it retires, and a full bucket is what a new actor has anyway: the saved state goes.
        _time.Advance(TimeSpan.FromSeconds(3));
        await UntilAsync(() => _handler.Finished == 10);
        _time.Advance(TimeSpan.FromSeconds(5));
        await UntilAsync(() => _dispatcher.ActiveActors == 0);
        Assert.Equal(0, await SavedStatesAsync("moving"));
    }

    [Fact]
    public async Task Retired_WithAFullBucketAtItsRate_WritesNothing()
    {
        await DefineAsync("quiet", rate: 100, burst: 2, concurrency: 4);
        await EnqueueAsync("quiet", 1);
        _dispatcher.Notify("quiet");
        await UntilAsync(() => _handler.Finished == 1);
        _time.Advance(TimeSpan.FromSeconds(1));
        await UntilAsync(() => _dispatcher.ActiveActors == 0);

        Assert.Equal(0, await SavedStatesAsync("quiet"));
    }

    [Fact]
    public async Task Stopped_WithItsAdaptiveRateLowered_TheGroupsNextActorResumesAtThatRate()
    {
        var written = await _registry.PutAsync("shy", new GroupDefinition
        {
            RatePerSecond = 100,
            Burst = 100,
            MaxConcurrency = 1,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
            AdaptiveRate = new AdaptiveRateDefinition { Enabled = true, DecreaseFactor = 0.5 },
        }, CancellationToken.None);
        Assert.Equal(GroupWriteOutcome.Created, written.Outcome);

        // Two refusals in a row halve the rate.
        _handler.Refuse = 2;
        await EnqueueAsync("shy", 2);
        _dispatcher.Notify("shy");
        await UntilAsync(() => _handler.Finished == 2);
        for (var deadline = DateTime.UtcNow.AddSeconds(10); (await _dispatcher.InspectAsync("shy"))?.RatePerSecond != 50; await Task.Delay(50))
        {
            Assert.True(DateTime.UtcNow < deadline, "the rate was never halved");
        }

        StopThroughTheRegion("shy");
        await UntilAsync(() => _dispatcher.ActiveActors == 0);
        Assert.Equal(1, await SavedStatesAsync("shy"));

        await EnqueueAsync("shy", 1, first: 10);
        _dispatcher.Notify("shy");
        await UntilAsync(() => _dispatcher.ActiveActors == 1);
        Assert.Equal(50, (await _dispatcher.InspectAsync("shy"))!.RatePerSecond, precision: 9);
    }

    [Fact]
    public async Task DeletedGroup_ItsSavedStateGoesWithIt()
    {
        await SpendTheBurstThenStopAsync("gone", burst: 3);

        Assert.True(await _registry.DeleteAsync("gone", CancellationToken.None));

        Assert.Equal(0, await SavedStatesAsync("gone"));
    }

    /// <summary>A group at 1/s spends its whole burst; then its actor gets the Stop of a handoff and saves its empty bucket.</summary>
    private async Task SpendTheBurstThenStopAsync(string groupId, int burst)
    {
        await DefineAsync(groupId, rate: 1, burst: burst, concurrency: 10);
        await EnqueueAsync(groupId, burst);
        _dispatcher.Notify(groupId);
        await UntilAsync(() => _handler.Finished == burst);
        StopThroughTheRegion(groupId);
        await UntilAsync(() => _dispatcher.ActiveActors == 0);
        Assert.Equal(1, await SavedStatesAsync(groupId));
    }

    private void StopThroughTheRegion(string groupId) =>
        ClusterSharding.Get(Sys).ShardRegion(GroupShards.TypeName).Tell(new GroupEnvelope(groupId, GroupProtocol.Stop.Instance));

    /// <summary>The group's rows in the snapshot table, read from the store file itself.</summary>
    private async Task<long> SavedStatesAsync(string groupId)
    {
        await using var connection = (Microsoft.Data.Sqlite.SqliteConnection)_database.OpenRead();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {GroupStateStore.Table} WHERE persistence_id = $id;";
        command.Parameters.AddWithValue("$id", GroupStateStore.PersistenceIdOf(groupId));
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Waits for that many calls to have started, then a while longer, and checks that no more have.</summary>
    private async Task StartedExactlyAsync(int count)
    {
        await UntilAsync(() => _handler.Started == count);
        await Task.Delay(Settle);
        Assert.Equal(count, _handler.Started);
    }

    private Task UntilAsync(Func<bool> condition, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(condition))] string? what = null) =>
        AwaitConditionAsync(condition, TimeSpan.FromSeconds(10), what);

    private async Task DefineAsync(string id, double rate, int burst, int concurrency)
    {
        var written = await _registry.PutAsync(id, new GroupDefinition
        {
            RatePerSecond = rate,
            Burst = burst,
            MaxConcurrency = concurrency,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        }, CancellationToken.None);
        Assert.Equal(GroupWriteOutcome.Created, written.Outcome);
    }

    private async Task EnqueueAsync(string groupId, int count, int first = 0)
    {
        for (var i = first; i < first + count; i++)
        {
            var result = await _queue.EnqueueAsync(new NewMessage($"{groupId}-{i}", groupId, "application/json", "{}"u8.ToArray(), null, default), CancellationToken.None);
            Assert.Equal(EnqueueOutcome.Accepted, result.Outcome);
        }
    }

    /// <summary>Delivers every message, at once or (with <see cref="Hold"/>) when the test lets a call end; remembers when each started.</summary>
    private sealed class HeldHandler(TimeProvider time) : IMessageHandler
    {
        private readonly ConcurrentQueue<DateTimeOffset> _started = new();
        private readonly ConcurrentQueue<TaskCompletionSource<HandlerOutcome>> _held = new();
        private int _finished;

        private int _refuse;

        public bool Hold { get; set; }

        /// <summary>How many of the next calls the target turns away with a 429.</summary>
        public int Refuse
        {
            set => Volatile.Write(ref _refuse, value);
        }

        public int Started => _started.Count;

        public int Finished => Volatile.Read(ref _finished);

        public IReadOnlyList<DateTimeOffset> StartTimes => [.. _started];

        public async Task<HandlerOutcome> HandleAsync(Delivery delivery, CancellationToken cancellationToken)
        {
            _started.Enqueue(time.GetUtcNow());
            if (Hold)
            {
                var call = new TaskCompletionSource<HandlerOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
                _held.Enqueue(call);
                await call.Task;
            }

            var refused = Interlocked.Decrement(ref _refuse) >= 0;
            Interlocked.Increment(ref _finished);
            return refused ? new HandlerOutcome.Failed("429 Too Many Requests", 429) : HandlerOutcome.Success;
        }

        public void FinishOne()
        {
            Assert.True(_held.TryDequeue(out var call), "no call is held");
            call.SetResult(HandlerOutcome.Success);
        }

        public void FinishAll()
        {
            while (_held.TryDequeue(out var call))
            {
                call.SetResult(HandlerOutcome.Success);
            }
        }
    }
}
