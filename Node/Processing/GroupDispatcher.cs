using Akka.Actor;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Keeps one actor per group that has work, and none for idle groups: an idle group costs an entry in the group
/// registry and nothing else (no actor, no timer). Actors are Akka.NET actors of the node's actor system, created by a
/// wake-up (ingress after a commit, a redrive, the start-up recovery scan, the periodic sweep) and retired by
/// themselves when idle. Creation and retirement happen under one lock, and an actor retires only when it has read
/// every message the dispatcher sent it, so a wake-up either reaches a live actor or creates a new one; it is never lost.
///
/// In a cluster the dispatcher runs only the groups of the shards this node holds. A wake-up for another node's group
/// is passed on (<see cref="WakeElsewhere"/>); shards that move away are handed over (<see cref="ReleaseShardsAsync"/>)
/// or, when their leases are lost, stopped at once (<see cref="AbortShards"/>).
/// </summary>
public sealed class GroupDispatcher : IHostedLifecycleService, IDisposable
{
    private readonly Dictionary<string, GroupActorHandle> _actors = new(StringComparer.Ordinal);
    private readonly Dictionary<int, CancellationTokenSource> _shardAborts = [];

    // The tokens of actors that failed, by group, until the group's next actor starts from them. Only a failure leaves
    // an entry (an actor retires with a full bucket, which a new actor has anyway), so this stays small.
    private readonly Dictionary<string, SavedBucket> _failedBuckets = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationTokenSource _stopSweeping = new();
    private readonly GroupRegistry _registry;
    private readonly IMessageQueue _queue;
    private readonly IMessageHandler _handler;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly NodeMetrics _metrics;
    private readonly NodeReadiness _readiness;
    private readonly ShardOwnership _ownership;
    private readonly ActorSystem _system;
    private readonly ILogger<GroupDispatcher> _logger;
    private readonly Lock _stopGate = new();
    private Task _sweeper = Task.CompletedTask;
    private Task? _stopped;
    private bool _stopping;

    public GroupDispatcher(
        GroupRegistry registry,
        IMessageQueue queue,
        IMessageHandler handler,
        TimeProvider time,
        IOptions<ProcessingOptions> options,
        NodeMetrics metrics,
        NodeReadiness readiness,
        ShardOwnership ownership,
        Ingress.OutcomeWaiters outcomes,
        ActorSystem system,
        ILogger<GroupDispatcher> logger)
    {
        Outcomes = outcomes;
        _registry = registry;
        _queue = queue;
        _handler = handler;
        _time = time;
        _options = options.Value;
        _metrics = metrics;
        _readiness = readiness;
        _ownership = ownership;
        _system = system;
        _logger = logger;
        CallSlots = new CallSlots(_options.MaxCallsInFlight);
        _registry.Changed += OnGroupChanged;
    }

    /// <summary>Requests on this node waiting for a message's outcome; actors announce each final outcome.</summary>
    internal Ingress.OutcomeWaiters Outcomes { get; }

    /// <summary>The node-wide cap on handler calls in flight, shared by every actor.</summary>
    internal CallSlots CallSlots { get; }

    // What every group actor shares, read by each as it starts.
    internal IMessageQueue Queue => _queue;

    internal TimeProvider Time => _time;

    internal ProcessingOptions Options => _options;

    internal NodeMetrics Metrics => _metrics;

    internal ShardOwnership Ownership => _ownership;

    internal ILogger Logger => _logger;

    public int ActiveActors
    {
        get
        {
            lock (_gate)
            {
                return _actors.Count;
            }
        }
    }

    /// <summary>Raised for a wake-up of a group whose shard another node holds; the cluster passes it on.</summary>
    public event Action<string>? WakeElsewhere;

    /// <summary>
    /// Tells the group's actor that messages may be visible, creating the actor if the group has none; a group this
    /// node does not own is woken on its owner.
    /// </summary>
    public void Notify(string groupId)
    {
        if (!_ownership.Owns(groupId))
        {
            WakeElsewhere?.Invoke(groupId);
            return;
        }

        NotifyOwned(groupId);
    }

    /// <summary>Wakes the group's actor if this node owns the group; does nothing otherwise.</summary>
    public void NotifyOwned(string groupId)
    {
        lock (_gate)
        {
            if (_stopping || !_ownership.Owns(groupId))
            {
                return;
            }

            if (_actors.TryGetValue(groupId, out var actor))
            {
                actor.Wake();
                return;
            }

            if (!_registry.TryGet(groupId, out var settings))
            {
                return;
            }

            var now = _time.GetUtcNow();
            var startTokens = _failedBuckets.Remove(groupId, out var left)
                ? TokensAt(left, settings, now)
                : _ownership.StartTokens(groupId, settings.RatePerSecond, settings.Burst, now);
            var handle = new GroupActorHandle(groupId);
            var calls = new CallRunner(groupId, _queue, _handler, _time, _options, _metrics, CallSlots, Outcomes, _logger, ShardAbort(_ownership.ShardOf(groupId)));
            handle.Actor = _system.ActorOf(Props.Create(() => new GroupActor(handle, settings, startTokens, this, calls)));
            _actors[groupId] = handle;
        }
    }

    /// <summary>The actor's live state, or null when the group has no actor (nothing in flight, bucket full).</summary>
    public Task<ActorSnapshot>? InspectAsync(string groupId)
    {
        lock (_gate)
        {
            return _actors.TryGetValue(groupId, out var actor) ? actor.InspectAsync() : null;
        }
    }

    /// <summary>
    /// Every actor's live state by group, for the dashboard; a group without an actor is absent (nothing in flight,
    /// bucket full). An actor that does not answer within <paramref name="wait"/> (one that stopped meanwhile) is left out
    /// rather than holding up the rest.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, ActorSnapshot>> InspectAllAsync(TimeSpan wait)
    {
        (string GroupId, Task<ActorSnapshot> Snapshot)[] asks;
        lock (_gate)
        {
            asks = [.. _actors.Select(actor => (actor.Key, actor.Value.InspectAsync()))];
        }

        await Task.WhenAll(asks.Select(ask => ask.Snapshot)).WaitAsync(wait, _time).ContinueWith(_ => { }, TaskScheduler.Default);
        return asks.Where(ask => ask.Snapshot.IsCompletedSuccessfully).ToDictionary(ask => ask.GroupId, ask => ask.Snapshot.Result, StringComparer.Ordinal);
    }

    /// <summary>
    /// Called by an idle actor with the number of the dispatcher's messages it has read; refused when one is still on
    /// its way, so that message is still handled.
    /// </summary>
    internal bool TryRetire(GroupActorHandle actor, int received)
    {
        lock (_gate)
        {
            if (actor.Sent != received)
            {
                return false;
            }

            Forget(actor);
            return true;
        }
    }

    /// <summary>
    /// Called by an actor whose loop failed, with its tokens at <paramref name="at"/>: the group's next actor (made by the
    /// next wake-up) starts from them plus what accrued since, as after a handover, not from a full bucket.
    /// </summary>
    internal void Failed(GroupActorHandle actor, double tokens, DateTimeOffset at)
    {
        lock (_gate)
        {
            if (_actors.TryGetValue(actor.GroupId, out var current) && ReferenceEquals(current, actor))
            {
                _actors.Remove(actor.GroupId);
                _failedBuckets[actor.GroupId] = new SavedBucket(tokens, at);
            }
        }
    }

    /// <summary>What a bucket left at <c>left.At</c> holds at <paramref name="now"/>, refilled at the group's rate.</summary>
    private static double TokensAt(SavedBucket left, GroupSettings settings, DateTimeOffset now) =>
        Math.Min(settings.Burst, left.Tokens + (settings.RatePerSecond * Math.Max(0, (now - left.At).TotalSeconds)));

    internal void Forget(GroupActorHandle actor)
    {
        lock (_gate)
        {
            if (_actors.TryGetValue(actor.GroupId, out var current) && ReferenceEquals(current, actor))
            {
                _actors.Remove(actor.GroupId);
            }
        }
    }

    /// <summary>The token that cancels the calls of one shard's actors (linked to the node's own), made when first needed.</summary>
    private CancellationToken ShardAbort(int shard)
    {
        if (!_shardAborts.TryGetValue(shard, out var abort))
        {
            abort = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token);
            _shardAborts[shard] = abort;
        }

        return abort.Token;
    }

    /// <summary>
    /// Takes the shards' actors, abort tokens and failed actors' tokens out of the dispatcher, in one pass, so nothing
    /// new starts for them.
    /// </summary>
    private (GroupActorHandle[] Actors, List<CancellationTokenSource> Aborts, List<(string GroupId, SavedBucket Bucket)> Failed) Detach(IReadOnlySet<int> shards)
    {
        lock (_gate)
        {
            var actors = _actors.Values.Where(a => shards.Contains(_ownership.ShardOf(a.GroupId))).ToArray();
            foreach (var actor in actors)
            {
                _actors.Remove(actor.GroupId);
                actor.Stop();
            }

            var failed = _failedBuckets.Where(f => shards.Contains(_ownership.ShardOf(f.Key))).Select(f => (f.Key, f.Value)).ToList();
            foreach (var (groupId, _) in failed)
            {
                _failedBuckets.Remove(groupId);
            }

            var aborts = new List<CancellationTokenSource>();
            foreach (var shard in shards)
            {
                if (_shardAborts.Remove(shard, out var abort))
                {
                    aborts.Add(abort);
                }
            }

            return (actors, aborts, failed);
        }
    }

    /// <summary>
    /// Hands shards over: their actors stop pulling, calls in flight get <paramref name="timeout"/> to finish, then the
    /// rest are cancelled (their messages go back to the queue). Returns each stopped group's tokens, for the next owner.
    /// The caller has already revoked the shards, so no new actor starts for them meanwhile.
    /// </summary>
    public async Task<IReadOnlyList<(int Shard, string GroupId, double Tokens)>> ReleaseShardsAsync(IReadOnlySet<int> shards, TimeSpan timeout)
    {
        var (actors, aborts, failed) = Detach(shards);
        var stopped = Task.WhenAll(actors.Select(a => a.Completion));
        try
        {
            await stopped.WaitAsync(timeout, _time);
        }
        catch (TimeoutException)
        {
            Log.HandoverTimedOut(_logger, shards.Count, timeout);
            aborts.ForEach(abort => abort.Cancel());
            await stopped.WaitAsync(TimeSpan.FromSeconds(5), _time).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        aborts.ForEach(abort => abort.Dispose());
        var now = _time.GetUtcNow();
        var buckets = actors.Where(a => a.Completion.IsCompleted).Select(a => (_ownership.ShardOf(a.GroupId), a.GroupId, a.RemainingTokens(now))).ToList();

        // A group whose actor failed hands over what that actor left, as a live one would.
        foreach (var (groupId, left) in failed)
        {
            if (_registry.TryGet(groupId, out var settings))
            {
                buckets.Add((_ownership.ShardOf(groupId), groupId, TokensAt(left, settings, now)));
            }
        }

        return buckets;
    }

    /// <summary>The shards' leases are lost (or about to be): stop their actors and cancel their calls now, without waiting.</summary>
    public void AbortShards(IReadOnlySet<int> shards)
    {
        var (actors, aborts, _) = Detach(shards);
        aborts.ForEach(abort =>
        {
            abort.Cancel();
            abort.Dispose();
        });
        Log.ShardsAborted(_logger, shards.Count, actors.Length);
    }

    /// <summary>Wakes the groups with pending messages among <paramref name="shards"/>, just acquired.</summary>
    public async Task WakeShardsAsync(IReadOnlySet<int> shards, CancellationToken cancellationToken)
    {
        foreach (var group in await _queue.GroupsWithPendingAsync(cancellationToken))
        {
            if (shards.Contains(_ownership.ShardOf(group)))
            {
                NotifyOwned(group);
            }
        }
    }

    private void OnGroupChanged(GroupChange change)
    {
        lock (_gate)
        {
            if (change.Settings is null)
            {
                _failedBuckets.Remove(change.GroupId);
            }

            if (!_actors.TryGetValue(change.GroupId, out var actor))
            {
                return;
            }

            if (change.Settings is { } settings)
            {
                actor.Reconfigure(settings);
            }
            else
            {
                // The group and its queue are gone; calls in flight finish, and their acks find nothing to change.
                _actors.Remove(change.GroupId);
                actor.Stop();
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _sweeper = Task.Run(() => SweepAsync(_stopSweeping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Wakes every group with pending messages: at start, after the queue recovered (messages left by a previous run), and then periodically, as a safety net.</summary>
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var groups = first
                    ? await _queue.RecoverAsync(_registry.All, cancellationToken)
                    : await _queue.GroupsWithPendingAsync(cancellationToken);
                foreach (var group in groups)
                {
                    NotifyOwned(group);
                }

                if (first)
                {
                    Log.Recovered(_logger, groups.Count);
                    _readiness.MarkRecovered();
                    first = false;
                }

                failures = 0;
                await Task.Delay(_options.RecoverySweepInterval, _time, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, failures++)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.SweepFailed(_logger, delay, ex);
                try
                {
                    await Task.Delay(delay, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The drain runs before any service's StopAsync, while the web server still takes (and stores) ingress.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => StopAsync(cancellationToken);

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops pulling, lets calls in flight finish within the drain timeout, then cancels the rest and hands their messages back.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        // The host can be stopped twice at once (WebApplicationFactory stops it while app.Run() does too, then disposes
        // it): a second call waits for the first instead of touching state the first call's host may have disposed.
        lock (_stopGate)
        {
            return _stopped ??= DrainAsync(cancellationToken);
        }
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        _readiness.MarkDraining();
        await _stopSweeping.CancelAsync();
        GroupActorHandle[] actors;
        lock (_gate)
        {
            _stopping = true;
            actors = [.. _actors.Values];
            _actors.Clear();
            foreach (var actor in actors)
            {
                actor.Stop();
            }
        }

        Log.Draining(_logger, actors.Length, _options.DrainTimeout);

        var drained = Task.WhenAll(actors.Select(a => a.Completion));
        try
        {
            await drained.WaitAsync(_options.DrainTimeout, _time, cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            Log.DrainTimedOut(_logger);
            await _abort.CancelAsync();

            // Cancelled calls release their messages; give those writes a moment to commit.
            await drained.WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await _sweeper.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public void Dispose()
    {
        _registry.Changed -= OnGroupChanged;
        lock (_gate)
        {
            foreach (var abort in _shardAborts.Values)
            {
                abort.Dispose();
            }

            _shardAborts.Clear();
        }

        _abort.Dispose();
        _stopSweeping.Dispose();
    }
}
