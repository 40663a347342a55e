using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster.Sharding;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The node's side of the group actors, which are Akka.Cluster.Sharding entities (<see cref="GroupShards"/>): wakes a
/// group wherever its shard lives (ingress after a commit, a redrive, the start-up recovery scan, the periodic sweep, a
/// change of members), keeps the local actors' addresses for the senders that need no routing, and drains the node.
/// An idle group costs an entry in the group registry and nothing else: its actor passivates itself once it has nothing
/// pending, nothing in flight and a full bucket, and the shard holds whatever arrives meanwhile and starts the next one
/// with it, so a wake-up is never lost.
/// </summary>
public sealed class GroupDispatcher : IHostedLifecycleService, IDisposable
{
    private readonly ConcurrentDictionary<string, GroupActorHandle> _actors = new(StringComparer.Ordinal);

    // The state of actors that failed or were stopped from outside, by group, until the group's next actor here starts
    // from it. An actor that stops by its own decision saves its state in the store instead (GroupStateStore).
    private readonly ConcurrentDictionary<string, SavedGroupState> _failedStates = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationTokenSource _stopSweeping = new();
    private readonly SemaphoreSlim _sweepNow = new(0, 1);
    private readonly GroupRegistry _registry;
    private readonly IMessageQueue _queue;
    private readonly IMessageHandler _handler;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly TimeSpan _handoverTimeout;
    private readonly NodeMetrics _metrics;
    private readonly NodeReadiness _readiness;
    private readonly ShardOwnership _ownership;
    private readonly ILogger<GroupDispatcher> _logger;
    private readonly Lock _stopGate = new();

    // Beyond the drain timeout, for the actors to cancel their calls and the shards to release their leases.
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(5);
    private readonly TaskCompletionSource _attached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IActorRef? _region;
    private Task _sweeper = Task.CompletedTask;
    private Task? _stopped;
    private volatile bool _stopping;

    // Set once the region's graceful shutdown starts: wake-ups sent through it from then on would keep it waiting.
    private volatile bool _handingOff;
    private readonly TimeSpan _renewInterval;

    public GroupDispatcher(
        GroupRegistry registry,
        IMessageQueue queue,
        IMessageHandler handler,
        TimeProvider time,
        IOptions<ProcessingOptions> options,
        IOptions<ClusterOptions> cluster,
        NodeMetrics metrics,
        NodeReadiness readiness,
        ShardOwnership ownership,
        Ingress.OutcomeWaiters outcomes,
        ILogger<GroupDispatcher> logger)
    {
        Outcomes = outcomes;
        _registry = registry;
        _queue = queue;
        _handler = handler;
        _time = time;
        _options = options.Value;
        _handoverTimeout = cluster.Value.HandoverTimeout;
        _renewInterval = cluster.Value.RenewInterval;
        _metrics = metrics;
        _readiness = readiness;
        _ownership = ownership;
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

    /// <summary>Cancelled when the node's drain runs out of time: every call still in flight ends.</summary>
    internal CancellationToken NodeAbort => _abort.Token;

    /// <summary>How long a stopping actor waits for its calls in flight: the drain's timeout while the node drains, else the handover's.</summary>
    internal TimeSpan StopTimeout => _stopping ? _options.DrainTimeout : _handoverTimeout;

    /// <summary>Run as the drain begins, before the shards are handed off: the member stops announcing itself, so none comes back to it.</summary>
    internal Func<Task>? BeforeHandoff { get; set; }

    /// <summary>
    /// Asked as the drain begins, after <see cref="BeforeHandoff"/>: whether other members can take this node's shards
    /// a wave at a time before its region hands off the rest (with the PostgreSQL store, while another member is Up).
    /// </summary>
    internal Func<bool>? ShardsLeaveInWaves { get; set; }

    /// <summary>Group actors running on this node.</summary>
    public int ActiveActors => _actors.Count;

    /// <summary>The shard region, once the actor system has started it; wake-ups before then are left to the recovery sweep.</summary>
    internal void Attach(IActorRef region, IActorRef stateStore)
    {
        StateStore = stateStore;
        Volatile.Write(ref _region, region);
        _attached.TrySetResult();
    }

    /// <summary>
    /// Marks the node ready for shards once its region is registered with the shard coordinator, so that groups placed
    /// from then on can land here: asks the coordinator for the regions until this member's is among them.
    /// </summary>
    internal async Task AwaitPlacementAsync(ActorSystem system, IActorRef region)
    {
        _readiness.RequireShardRegion();
        var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
        while (!_stopping)
        {
            try
            {
                var regions = await region.Ask<CurrentRegions>(GetCurrentRegions.Instance, TimeSpan.FromSeconds(2));
                if (regions.Regions.Contains(self))
                {
                    _readiness.MarkShardRegionRegistered();
                    return;
                }
            }
            catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException)
            {
                // The coordinator is not there yet (the member has just come Up).
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), _time);
        }
    }

    /// <summary>Tells the group's actor that messages may be visible, on whichever member holds its shard, starting it if it has none.</summary>
    public void Notify(string groupId)
    {
        if (_handingOff)
        {
            return;
        }

        if (_actors.TryGetValue(groupId, out var actor) && !actor.TryMarkWakePending())
        {
            return;
        }

        Volatile.Read(ref _region)?.Tell(new GroupEnvelope(groupId, GroupProtocol.Wake.Instance), ActorRefs.NoSender);
    }

    /// <summary>
    /// Wakes a group whose actor has just been handed off with work left, even while this node drains: in a cluster the
    /// region holds the wake-up until the coordinator names the shard's new home and sends it there. (Alone, there is
    /// no other home, and the group waits for this node's next start.)
    /// </summary>
    internal void WakeAfterHandoff(string groupId)
    {
        if (_ownership.IsClustered)
        {
            Volatile.Read(ref _region)?.Tell(new GroupEnvelope(groupId, GroupProtocol.Wake.Instance), ActorRefs.NoSender);
        }
    }

    /// <summary>
    /// Every actor's live state by group, for the dashboard; a group without an actor is absent (nothing in flight,
    /// bucket full). An actor that does not answer within <paramref name="wait"/> (one that stopped meanwhile) is left out
    /// rather than holding up the rest.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, ActorSnapshot>> InspectAllAsync(TimeSpan wait)
    {
        (string GroupId, Task<ActorSnapshot> Snapshot)[] asks = [.. _actors.Select(actor => (actor.Key, actor.Value.InspectAsync()))];
        await Task.WhenAll(asks.Select(ask => ask.Snapshot)).WaitAsync(wait, _time).ContinueWith(_ => { }, TaskScheduler.Default);
        return asks.Where(ask => ask.Snapshot.IsCompletedSuccessfully).ToDictionary(ask => ask.GroupId, ask => ask.Snapshot.Result, StringComparer.Ordinal);
    }

    /// <summary>
    /// The actor's live state, or null when the group has no actor on this node (nothing in flight, bucket full, or
    /// another member's), including one that stopped before it answered.
    /// </summary>
    public async Task<ActorSnapshot?> InspectAsync(string groupId)
    {
        if (!_actors.TryGetValue(groupId, out var actor))
        {
            return null;
        }

        try
        {
            return await actor.InspectAsync();
        }
        catch (AskTimeoutException) when (actor.Completion.IsCompleted)
        {
            return null;
        }
    }

    /// <summary>Runs the sweep now: members changed, so some groups' shards may have moved and need a wake-up on their new owner.</summary>
    public void SweepSoon()
    {
        try
        {
            _sweepNow.Release();
        }
        catch (SemaphoreFullException)
        {
            // A sweep is already due.
        }
    }

    /// <summary>What the shard region starts for a group: its actor, or, for a group that no longer exists, one that stops at once.</summary>
    internal Props EntityProps(string groupId) =>
        _registry.TryGet(groupId, out var settings)
            ? Props.Create(() => new GroupActor(groupId, settings, this))
            : Props.Create(() => new AbsentGroup());

    internal CallRunner CallsFor(string groupId, CancellationToken abort) =>
        new(groupId, _queue, _handler, _time, _options, _metrics, CallSlots, Outcomes, _logger, abort);

    internal GroupActorHandle Register(string groupId, IActorRef actor)
    {
        var handle = new GroupActorHandle(groupId, actor);
        _actors[groupId] = handle;
        return handle;
    }

    internal void Unregister(GroupActorHandle handle) =>
        _actors.TryRemove(new KeyValuePair<string, GroupActorHandle>(handle.GroupId, handle));

    /// <summary>The actor system's snapshot store, where actors load and save their groups' state; set with the region.</summary>
    internal IActorRef StateStore { get; private set; } = ActorRefs.Nobody;

    /// <summary>Takes what a failed actor of the group here left, for the group's next actor.</summary>
    internal bool TryTakeFailed(string groupId, out SavedGroupState state) => _failedStates.TryRemove(groupId, out state!);

    /// <summary>
    /// Called by an actor that failed or was stopped from outside, with its state: the group's next actor here starts
    /// from it plus what accrued since, not from a full bucket.
    /// </summary>
    internal void Failed(string groupId, SavedGroupState state)
    {
        if (_ownership.Owns(groupId) && _registry.TryGet(groupId, out _))
        {
            _failedStates[groupId] = state;
        }
    }

    /// <summary>Whether the group still exists; an actor of a deleted one leaves nothing behind.</summary>
    internal bool IsDefined(string groupId) => _registry.TryGet(groupId, out _);

    private void OnGroupChanged(GroupChange change)
    {
        if (change.Settings is null)
        {
            _failedStates.TryRemove(change.GroupId, out _);
            _ownership.SetNothingSaved(change.GroupId, true);
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
            actor.Stop();
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
        try
        {
            // Wake-ups go through the region: the first sweep waits for it, or its wake-ups would be lost.
            await _attached.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var groups = first
                    ? await _queue.RecoverAsync(_registry.All, cancellationToken)
                    : await _queue.GroupsWithPendingAsync(cancellationToken);
                foreach (var group in groups)
                {
                    Notify(group);
                }

                if (first)
                {
                    Log.Recovered(_logger, groups.Count);
                    _readiness.MarkRecovered();
                    first = false;
                }

                failures = 0;
                await WaitForNextSweepAsync(cancellationToken);
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

    /// <summary>Until the sweep interval has passed or <see cref="SweepSoon"/> was called.</summary>
    private async Task WaitForNextSweepAsync(CancellationToken cancellationToken)
    {
        using var interval = new CancellationTokenSource(_options.RecoverySweepInterval, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(interval.Token, cancellationToken);
        try
        {
            await _sweepNow.WaitAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The interval passed.
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
        _stopping = true;
        await _stopSweeping.CancelAsync();
        var actors = _actors.Values.ToArray();
        Log.Draining(_logger, actors.Length, _options.DrainTimeout);
        if (BeforeHandoff is { } announce)
        {
            await announce();
        }

        // The region hands every shard of this node off: each actor gets a Stop, leases nothing more and ends once its
        // calls have finished, or cancels them at the drain timeout; then each shard's lease is released. Wake-ups
        // from then on are not sent (they would keep the region waiting): what arrives is durable, and the sweep that
        // the other members run when this one leaves wakes it on the shards' new owners.
        if (Volatile.Read(ref _region) is { } region)
        {
            if (ShardsLeaveInWaves?.Invoke() == true)
            {
                await AwaitShardsMovedAsync(region, cancellationToken);
            }

            _handingOff = true;
            using var handedOff = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var watching = StopOnceHandedOffAsync(region, handedOff.Token);
            try
            {
                await region.GracefulStop(_options.DrainTimeout + DrainGrace, GracefulShutdown.Instance).WaitAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is TaskCanceledException or OperationCanceledException or TimeoutException)
            {
                Log.DrainTimedOut(_logger);
            }
            finally
            {
                await handedOff.CancelAsync();
                await watching.ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        // Whatever is still in flight (an actor the handoff never reached) ends now; cancelled calls release their
        // messages, and those writes get a moment to commit.
        await _abort.CancelAsync();
        await Task.WhenAll(_actors.Values.Select(a => a.Completion)).WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None)
            .ContinueWith(_ => { }, TaskScheduler.Default);
        await _sweeper.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>
    /// Waits while the other members take this node's shards, a wave at a time, and its groups run on until their own
    /// shard moves: the shard coordinator passes over a member that stopped announcing itself, and moves only a wave of
    /// shards at once (RendezvousAllocation), so each moved group waits for its own wave's steps rather than for all
    /// of them. The coordinator's member learns of the leave at its next renewal of its own row, so the first wave may
    /// take that long to start. Ends when no shard is left, when none has moved for a renewal interval and a bit more
    /// (the coordinator did not hear of it, or no member can take them), or at a quarter of the drain timeout; the
    /// region's graceful shutdown hands off whatever is left at once. When every member stops at once, the waves may
    /// move shards to another member that is stopping too: that costs each member this wait, and nothing else.
    /// </summary>
    private async Task AwaitShardsMovedAsync(IActorRef region, CancellationToken cancellationToken)
    {
        var stall = _renewInterval + ShardMoveSlack;
        var started = _time.GetTimestamp();
        var movedAt = started;
        int? first = null;
        var least = int.MaxValue;
        try
        {
            while (_time.GetElapsedTime(started) < _options.DrainTimeout / 4 && _time.GetElapsedTime(movedAt) < stall)
            {
                try
                {
                    var held = (await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, ShardPoll, cancellationToken)).Shards.Count;
                    first ??= held;
                    if (held < least)
                    {
                        least = held;
                        movedAt = _time.GetTimestamp();
                    }

                    if (held == 0)
                    {
                        break;
                    }
                }
                catch (AskTimeoutException)
                {
                    // Busy: asked again at the next poll.
                }

                await Task.Delay(ShardPoll, _time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // The host's stop ran out of time: the graceful shutdown below gives up at once and cancels the calls.
        }

        Log.ShardsMovedInWaves(_logger, first is { } count ? count - least : 0, first ?? 0, _time.GetElapsedTime(started));
    }

    private static readonly TimeSpan ShardPoll = TimeSpan.FromMilliseconds(200);

    // Beyond the coordinator's member's renewal interval: its rebalance tick (250 ms, on Akka's 250 ms scheduler ticks).
    private static readonly TimeSpan ShardMoveSlack = TimeSpan.FromSeconds(1.5);

    /// <summary>
    /// Stops the region once it has hosted nothing for <see cref="HostlessWait"/> during the drain. A region ends its
    /// graceful shutdown only when it also holds no messages for shards whose new home it is waiting to hear: the
    /// wake-ups of <see cref="WakeAfterHandoff"/>. When every member stops at once (scaling to zero, uninstalling) no
    /// member can be that home, and each region waited out the drain's and the sharding phase's timeouts (59 s in the
    /// benchmark's teardown). Those wake-ups are hints: the store holds the messages, and the other members sweep when this
    /// one has left (MemberExited), which wakes its groups on their new owners. In the leave of one member the region
    /// ends by itself once the shards have new homes, well within this wait (1.1 s after its last handover, at most, in
    /// the loaded benchmark runs).
    /// </summary>
    private async Task StopOnceHandedOffAsync(IActorRef region, CancellationToken cancellationToken)
    {
        long? hostlessSince = null;
        while (true)
        {
            await Task.Delay(HostlessPoll, _time, cancellationToken);
            CurrentShardRegionState state;
            try
            {
                state = await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, HostlessPoll, cancellationToken);
            }
            catch (AskTimeoutException)
            {
                hostlessSince = null;
                continue;
            }

            if (state.Shards.Count > 0 || state.Failed.Count > 0)
            {
                hostlessSince = null;
                continue;
            }

            hostlessSince ??= _time.GetTimestamp();
            if (_time.GetElapsedTime(hostlessSince.Value) >= HostlessWait)
            {
                Log.RegionStoppedHostless(_logger, HostlessWait);
                region.Tell(PoisonPill.Instance);
                return;
            }
        }
    }

    private static readonly TimeSpan HostlessPoll = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan HostlessWait = TimeSpan.FromSeconds(3);

    public void Dispose()
    {
        _registry.Changed -= OnGroupChanged;
        _abort.Dispose();
        _stopSweeping.Dispose();
        _sweepNow.Dispose();
    }

    /// <summary>An actor that stops at once: the shard region asked for a group that was deleted meanwhile.</summary>
    private sealed class AbsentGroup : UntypedActor
    {
        protected override void PreStart() => Context.Stop(Self);

        protected override void OnReceive(object message)
        {
        }
    }
}
