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

    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new();
    private readonly HeldHandler _handler;
    private SqliteDatabase _database = null!;
    private IMessageQueue _queue = null!;
    private GroupRegistry _registry = null!;
    private GroupDispatcher _dispatcher = null!;

    public GroupActorTests()
        : base(ShardedSystem.Settings, nameof(GroupActorTests))
    {
        _handler = new HeldHandler(_time);
    }

    public async Task InitializeAsync()
    {
        _database = new SqliteDatabase(
            Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File("clusterqueue.db") } }),
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
        await UntilAsync(() => _handler.Started == 3);
        await Task.Delay(Settle);
        Assert.Equal(3, _handler.Started);

        // One token every 100 ms: a tenth of a second gives one call, and the clock standing still gives no more.
        _time.Advance(TimeSpan.FromMilliseconds(100));
        await UntilAsync(() => _handler.Started == 4);
        await Task.Delay(Settle);
        Assert.Equal(4, _handler.Started);

        _time.Advance(TimeSpan.FromMilliseconds(250));
        await UntilAsync(() => _handler.Started == 6);
        await Task.Delay(Settle);
        Assert.Equal(6, _handler.Started);
        Assert.All(_handler.StartTimes.Skip(4), at => Assert.True(at >= _handler.StartTimes[0] + TimeSpan.FromMilliseconds(200), $"a call started at {at:O}, before its token"));
    }

    [Fact]
    public async Task Concurrency_NoMoreCallsInFlightThanTheLimit_AndTheNextStartsAsOneEnds()
    {
        _handler.Hold = true;
        await DefineAsync("narrow", rate: 1000, burst: 1000, concurrency: 2);
        await EnqueueAsync("narrow", 5);

        _dispatcher.Notify("narrow");
        await UntilAsync(() => _handler.Started == 2);
        await Task.Delay(Settle);
        Assert.Equal(2, _handler.Started);
        Assert.Equal(2, (await _dispatcher.InspectAsync("narrow"))!.InFlight);

        _handler.FinishOne();
        await UntilAsync(() => _handler.Started == 3);
        await Task.Delay(Settle);
        Assert.Equal(3, _handler.Started);
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

    private async Task EnqueueAsync(string groupId, int count)
    {
        for (var i = 0; i < count; i++)
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

        public bool Hold { get; set; }

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

            Interlocked.Increment(ref _finished);
            return HandlerOutcome.Success;
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
