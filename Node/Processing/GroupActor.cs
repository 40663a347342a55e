using System.Runtime.ExceptionServices;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Persistence;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// One group's actor, an Akka.Cluster.Sharding entity (<see cref="GroupShards"/>): the only code that changes the
/// group's token bucket, in-flight count, pause and AIMD state. Everything else talks to it through its mailbox
/// (<see cref="GroupProtocol"/>).
/// <code>
///   Wake, Reconfigure, CallFinished, SlotsFreed, Stop, Tick ── each queues one Evaluate behind what is in the mailbox
///        │
///        ▼                                   (a new actor first reads its group's saved state: Loading)
///   ┌─▶ Ready ── Evaluate: start the calls the bucket, the concurrency limit and the node's call slots allow
///   │      ├── a lease (or a release of messages leased early) started ──▶ Busy: stash everything but its outcome ─┐
///   │      ├── idle (nothing pending or in flight, bucket full) ──▶ passivate: the shard stops it (Stop)           │
///   │      └── otherwise arm the timer: next token, next visible message, end of a pause                           │
///   └──────────────────────────────────────────────── Leased / LeaseFailed / EarlyReleased: unstash ◀──────────────┘
/// </code>
/// Nothing inside blocks or awaits: a lease, a handler call and a release are started here and their outcomes piped
/// back as messages. It leases only what it can start at once, so no lease is burnt waiting for a token. It passivates
/// only with a full bucket, as a fresh actor starts: an idle group's actor saves nothing but a lowered rate. A Stop (its
/// shard moves away, the node drains, the group is deleted) ends it once its calls in flight have finished, or at the
/// dispatcher's stop timeout, when it cancels them and their messages go back to the queue. Before it ends by its own
/// decision it saves its bucket and AIMD state (<see cref="GroupStateStore"/>, Saving) unless a fresh actor would start
/// the same way, and a new actor reads that first (Loading): the group's next actor, here or on the shard's next
/// owner, never hands out a second burst or forgets a lowered rate. An actor that fails leaves its state with the
/// dispatcher for the next one here. Its timer runs on <see cref="TimeProvider"/>, not Akka's scheduler: that ticks
/// every 10 ms, and a burst-1 group loses whatever its timer is late on every message.
/// </summary>
internal sealed class GroupActor : UntypedActor, IWithUnboundedStash
{
    // An actor in line for the node's call slots is woken when calls finish; this is only the safety net.
    private static readonly TimeSpan SlotWaitFallback = TimeSpan.FromSeconds(1);

    // A timer shorter than this is not worth arming; the actor re-checks the bucket anyway.
    private static readonly TimeSpan MinimumWait = TimeSpan.FromMilliseconds(1);

    // The longest one timer is armed for. A timer cannot hold more than about 49.7 days, and a tiny rate's next token
    // or a message delayed for months is further off than that: the actor wakes at this step, finds nothing to do and
    // waits again. A daily wake costs nothing.
    private static readonly TimeSpan MaximumWait = TimeSpan.FromDays(1);

    // The furthest ahead of its tokens a lease may start, and the longest a message leased early may wait for one.
    private static readonly TimeSpan MaxLeaseLead = TimeSpan.FromMilliseconds(100);

    private readonly GroupActorHandle _handle;
    private readonly string _groupId;
    private readonly GroupDispatcher _dispatcher;
    private readonly IMessageQueue _queue;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ShardOwnership _ownership;
    private readonly CallRunner _calls;
    private TokenBucket _bucket;

    // Messages leased ahead of their tokens; each starts when its token is whole, so starts still obey the bucket.
    private readonly Queue<LeasedMessage> _early = new();

    private GroupSettings _settings;

    // The group's AIMD state when its definition enables it; saved with the bucket for the group's next actor.
    private AdaptiveRate? _adaptive;
    private int _inFlight;
    private DateTimeOffset _pausedUntil;
    private bool _mayHaveVisible = true;
    private DateTimeOffset? _nextVisibleAt;
    private bool _stopping;

    // When a Stop came and when its calls had finished (monotonic timestamps): how long a move's steps took, for the log.
    private long _stopAskedAt;
    private long _endedAt;
    private int _leaseFailures;

    // After a failed lease, the next one waits until then: the store is failing, and asking again at once adds load.
    private DateTimeOffset _leaseRetryAt;

    // Call slots taken for the lease on its way; a failure in between gives them back.
    private int _leaseSlots;

    // Leases start this far ahead of the tokens they are for: a bucket at its cap gains nothing while a lease is on its
    // way, so a burst-1 group that leased only once its token was whole lost a lease round trip of refill per message.
    // The slowest recent lease, decaying.
    private TimeSpan _leaseLead;

    // The last lease got fewer node-wide call slots than it wanted: the actor is in line for more.
    private bool _awaitingSlots;

    private SlotWaiter _waiter = null!;
    private TickTimer _timer = null!;
    private bool _evaluateQueued;

    // Cancels this actor's calls in flight: at the stop timeout, or at once when the actor is stopped from outside
    // (its shard's lease was lost, the actor system is going down) or fails, or when this node's hold on its shard ends
    // (the lease's watchdog cancels them itself, ahead of Akka's shard stopping the actor).
    private readonly CancellationTokenSource _abort;
    private ITimer? _stopDeadline;

    // Asked the shard to passivate it; it is stopped soon, and a wake-up read meanwhile is sent again as it stops.
    private bool _passivating;
    private bool _wokenWhilePassivating;

    // Stopped by its own decision (passivated, or a Stop with its calls finished); a stop without it is a failure, a
    // lost lease or the actor system going down.
    private bool _ended;
    private Exception? _failure;

    // Set once the actor has its starting state (saved, failed or fresh): before that its bucket is a placeholder.
    private bool _resumed;

    // The store may hold a saved state of the group (this actor found one, or could not tell): one it leaves nothing
    // for must delete it, or the next actor would start from a stale one.
    private bool _storeMayHoldState;

    // The load or save on its way to the snapshot store, and its deadline; a timeout of an earlier one is ignored.
    private ITimer? _storeDeadline;
    private long _storeRequest;

    public GroupActor(string groupId, GroupSettings settings, GroupDispatcher dispatcher)
    {
        _groupId = groupId;
        _settings = settings;
        _dispatcher = dispatcher;
        _ownership = dispatcher.Ownership;
        _abort = CancellationTokenSource.CreateLinkedTokenSource(dispatcher.NodeAbort, _ownership.TenureOf(groupId));
        _calls = dispatcher.CallsFor(groupId, _abort.Token);
        _handle = dispatcher.Register(groupId, Self);
        _queue = dispatcher.Queue;
        _time = dispatcher.Time;
        _options = dispatcher.Options;
        _metrics = dispatcher.Metrics;
        _logger = dispatcher.Logger;
        var now = _time.GetUtcNow();
        _bucket = new TokenBucket(settings.RatePerSecond, settings.Burst, now);
        _adaptive = settings.Adaptive is { } adaptive ? new AdaptiveRate(settings.RatePerSecond, adaptive, now) : null;
    }

    public IStash Stash { get; set; } = null!;

    private string GroupId => _groupId;

    protected override void PreStart()
    {
        _waiter = new SlotWaiter(Self);
        _timer = new TickTimer(Self, _time);
        Log.ActorStarted(_logger, GroupId);
        if (_dispatcher.TryTakeFailed(GroupId, out var failed))
        {
            _storeMayHoldState = !_ownership.NothingSaved(GroupId);
            Resume(failed);
        }
        else if (_ownership.NothingSaved(GroupId))
        {
            Resume(null);
        }
        else
        {
            // What the group's last actor saved, here or on another node; everything else waits for it.
            _storeMayHoldState = true;
            AskStore(GroupStateStore.Load(GroupId));
            Become(Loading);
            return;
        }

        // A new actor looks for visible messages at once, as it was made by a wake-up.
        EvaluateSoon();
    }

    /// <summary>While the group's saved state is on its way: everything else waits for it.</summary>
    private void Loading(object message)
    {
        switch (message)
        {
            case LoadSnapshotResult result:
                EndStoreRequest();
                var saved = result.Snapshot?.Snapshot as SavedGroupState;
                _storeMayHoldState = saved is not null;
                if (saved is null)
                {
                    _ownership.SetNothingSaved(GroupId, true);
                }

                Resume(saved is not null && _ownership.Trusts(GroupId, saved) ? saved : null);
                BackToReady();
                break;
            case LoadSnapshotFailed failed:
                EndStoreRequest();
                StartEmpty(failed.Cause);
                break;
            case StoreTimedOut timedOut when timedOut.Request == _storeRequest:
                EndStoreRequest();
                StartEmpty(GroupStateStore.NoAnswer());
                break;
            case StoreTimedOut:
                break;
            default:
                Stash.Stash();
                break;
        }
    }

    /// <summary>
    /// The store could not say what the group's last actor left: the bucket starts empty and fills at the rate, the one
    /// start that cannot exceed burst + rate × T whatever that actor did.
    /// </summary>
    private void StartEmpty(Exception cause)
    {
        Log.StateLoadFailed(_logger, GroupId, cause);
        Resume(new SavedGroupState(0, _time.GetUtcNow(), null, null, null));
        BackToReady();
    }

    /// <summary>
    /// Takes up from what the group's previous actor left (plus what accrued since), or, with nothing to go on, starts
    /// as a new group's actor: full, or after a failover with only what accrued since the failed owner went quiet.
    /// </summary>
    private void Resume(SavedGroupState? saved)
    {
        _resumed = true;
        var now = _time.GetUtcNow();
        if (saved is null)
        {
            if (_ownership.StartTokens(GroupId, _settings.RatePerSecond, _settings.Burst, now) is { } tokens)
            {
                _bucket = new TokenBucket(_settings.RatePerSecond, _settings.Burst, now, tokens);
            }

            return;
        }

        if (_adaptive is { } aimd && saved.EffectiveRate is { } effective)
        {
            aimd.Resume(effective, saved.RateChangedAt ?? saved.At);
            _metrics.EffectiveRate(GroupId, aimd.Effective, aimd.Configured);
        }

        var rate = _adaptive?.Effective ?? _settings.RatePerSecond;
        _bucket = new TokenBucket(rate, _settings.Burst, now, saved.TokensAt(rate, _settings.Burst, now));
    }

    /// <summary>What the group's next actor needs from this one: the bucket and the AIMD state, and the shard's epoch.</summary>
    private SavedGroupState StateAt(DateTimeOffset now) =>
        new(_bucket.Available(now), now, _adaptive?.Effective, _adaptive?.ChangedAt, _ownership.EpochOf(GroupId));

    /// <summary>
    /// Ends the actor by its own decision (passivated, or stopped with its calls finished): first the state its next
    /// actor needs is saved, or a saved one deleted when a new actor would start the same way anyway (a full bucket at
    /// the configured rate) or the group is gone. Its shard releases its lease only after it stops, so the next owner
    /// reads what it saved.
    /// </summary>
    private void End()
    {
        _ended = true;
        _endedAt = _time.GetTimestamp();
        _timer.Disarm();
        var state = StateAt(_time.GetUtcNow());
        var startsFresh = state.Tokens >= _settings.Burst - 1e-9 && (_adaptive is null || _adaptive.Effective >= _adaptive.Configured);
        object? request = _dispatcher.IsDefined(GroupId) && !startsFresh ? GroupStateStore.Save(GroupId, state)
            : _storeMayHoldState ? GroupStateStore.Delete(GroupId)
            : null;
        if (request is null)
        {
            Context.Stop(Self);
            return;
        }

        AskStore(request);
        Become(Saving);
    }

    /// <summary>While its state is being saved: it stops at the answer, or at the deadline.</summary>
    private void Saving(object message)
    {
        switch (message)
        {
            case SaveSnapshotSuccess:
                _ownership.SetNothingSaved(GroupId, false);
                Context.Stop(Self);
                break;
            case DeleteSnapshotsSuccess:
                _ownership.SetNothingSaved(GroupId, true);
                Context.Stop(Self);
                break;
            case SaveSnapshotFailure failure:
                Log.StateSaveFailed(_logger, GroupId, failure.Cause);
                Context.Stop(Self);
                break;
            case DeleteSnapshotsFailure failure:
                Log.StateSaveFailed(_logger, GroupId, failure.Cause);
                Context.Stop(Self);
                break;
            case StoreTimedOut timedOut when timedOut.Request == _storeRequest:
                Log.StateSaveFailed(_logger, GroupId, GroupStateStore.NoAnswer());
                Context.Stop(Self);
                break;
            case GroupProtocol.Wake:
                _handle.WakeRead();
                if (_passivating)
                {
                    _wokenWhilePassivating = true;
                }
                else
                {
                    _mayHaveVisible = true;
                }

                break;
            case GroupProtocol.Inspect:
                Sender.Tell(Snapshot());
                break;
        }
    }

    private void AskStore(object request)
    {
        var id = ++_storeRequest;
        var self = Self;
        _dispatcher.StateStore.Tell(request, self);
        _storeDeadline = _time.CreateTimer(_ => self.Tell(new StoreTimedOut(id), ActorRefs.NoSender), null, GroupStateStore.OperationTimeout, Timeout.InfiniteTimeSpan);
    }

    private void EndStoreRequest()
    {
        _storeDeadline?.Dispose();
        _storeDeadline = null;
    }

    protected override void PostStop()
    {
        _timer.Dispose();
        _stopDeadline?.Dispose();
        _storeDeadline?.Dispose();
        if (!_ended)
        {
            // Stopped from outside or failed: its calls in flight must not outlive it (a successor may start the group's
            // calls now), so they are cancelled and their messages go back. The early messages' leases run out by
            // themselves; their slots must come back now.
            _abort.Cancel();
            _dispatcher.CallSlots.Return(_early.Count + _leaseSlots);
            _early.Clear();

            // The next actor of the group here starts from this one's state: a fresh, full bucket would be a burst the
            // group never earned, once per failure. One stopped while it read its saved state has none of its own: the
            // next one reads it again.
            if (_resumed)
            {
                _dispatcher.Failed(GroupId, StateAt(_time.GetUtcNow()));
            }
            if (_failure is not null)
            {
                Log.ActorFailed(_logger, GroupId, _failure);
            }
        }
        else if (_stopping && !_passivating)
        {
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                Log.HandedOff(_logger, GroupId, _time.GetElapsedTime(_stopAskedAt, _endedAt).TotalMilliseconds, _time.GetElapsedTime(_endedAt).TotalMilliseconds);
            }

            if (_mayHaveVisible || _nextVisibleAt is not null)
            {
                // Its shard moves away (or the node drains) with work left: the next owner starts the group at once,
                // from the state saved in End. The wake-up waits in the region for the shard's new home.
                _dispatcher.WakeAfterHandoff(GroupId);
            }
        }

        // It may still be in line for call slots, or have been given a turn it never read: the turn must not die with it.
        _dispatcher.CallSlots.Leave(_waiter);
        PassOnUntakenSlots();
        _dispatcher.Unregister(_handle);
        _handle.Stopped();
        _abort.Dispose();
        if (_wokenWhilePassivating)
        {
            // A message came after it asked to passivate: the wake-up goes out again, and the shard, which holds what
            // arrives for a passivating entity, starts the group's next actor with it.
            _dispatcher.Notify(GroupId);
        }
    }

    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception ex)
        {
            // Stopped here rather than by a supervisor: the shard's would restart it in place, from a full bucket.
            // PostStop logs the failure once the tokens are saved.
            _failure = ex;
            Context.Stop(Self);
            return true;
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GroupProtocol.Wake:
                // Cleared before the lease that follows, so a message committed after this point wakes the actor again.
                _handle.WakeRead();
                if (_passivating)
                {
                    _wokenWhilePassivating = true;
                    break;
                }

                _mayHaveVisible = true;
                EvaluateSoon();
                break;
            case GroupProtocol.SlotsFreed:
                _mayHaveVisible = true;
                EvaluateSoon();
                break;
            case GroupProtocol.Reconfigure reconfigure:
                Reconfigure(reconfigure.Settings);
                EvaluateSoon();
                break;
            case GroupProtocol.CallFinished finished:
                Finished(finished);
                EvaluateSoon();
                break;
            case GroupProtocol.Stop:
                if (!_stopping)
                {
                    _stopping = true;
                    _stopAskedAt = _time.GetTimestamp();
                    var timeout = _dispatcher.StopTimeout;
                    _stopDeadline = _time.CreateTimer(static state => ((CancellationTokenSource)state!).Cancel(), _abort, timeout, Timeout.InfiniteTimeSpan);
                }

                EvaluateSoon();
                break;
            case GroupProtocol.Inspect:
                Sender.Tell(Snapshot());
                break;
            case GroupProtocol.Tick tick:
                if (tick.Generation == _timer.Generation)
                {
                    EvaluateSoon();
                }

                break;
            case GroupProtocol.Evaluate:
                _evaluateQueued = false;
                Evaluate();
                break;
            case LoadSnapshotResult or LoadSnapshotFailed or StoreTimedOut:
                // The answer to a load after its deadline: the actor started without it.
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>While a lease or a release is on its way: everything else waits for its outcome, as it would in a loop that awaited it.</summary>
    private void Busy(object message)
    {
        switch (message)
        {
            case GroupProtocol.Leased leased:
                Leased(leased);
                BackToReady();
                break;
            case GroupProtocol.LeaseFailed failed:
                LeaseFailed(failed);
                BackToReady();
                break;
            case GroupProtocol.EarlyReleased:
                BackToReady();
                break;
            default:
                Stash.Stash();
                break;
        }
    }

    private void BackToReady()
    {
        Become(OnReceive);
        Stash.UnstashAll();
        EvaluateSoon();
    }

    private void EvaluateSoon()
    {
        if (!_evaluateQueued)
        {
            _evaluateQueued = true;
            Self.Tell(GroupProtocol.Evaluate.Instance);
        }
    }

    private void Evaluate()
    {
        if (_passivating && !_stopping)
        {
            // Asked to be stopped: it starts nothing more, and its next actor takes up whatever comes meanwhile.
            PassOnUntakenSlots();
            _timer.Disarm();
            return;
        }

        if (_stopping)
        {
            if (_early.Count > 0)
            {
                ReleaseEarly();
                return;
            }

            PassOnUntakenSlots();
            if (_inFlight == 0)
            {
                End();
            }

            // Otherwise the calls in flight report back.
            return;
        }

        if (StartWhatWeCan())
        {
            return;
        }

        PassOnUntakenSlots();
        var now = _time.GetUtcNow();
        if (IsIdle(now))
        {
            if (!_passivating)
            {
                // The shard answers with a Stop, and holds whatever arrives for the group meanwhile.
                _passivating = true;
                _metrics.EffectiveRate(GroupId, _settings.RatePerSecond, _settings.RatePerSecond);
                Log.ActorRetired(_logger, GroupId);
                Context.Parent.Tell(new Passivate(GroupProtocol.Stop.Instance));
            }

            _timer.Disarm();
            return;
        }

        var wait = now < _leaseRetryAt && _early.Count == 0 ? _leaseRetryAt - now : NextWake(now);
        if (wait is { } delay)
        {
            _timer.Arm(delay < MinimumWait ? MinimumWait : delay > MaximumWait ? MaximumWait : delay);
        }
        else
        {
            _timer.Disarm();
        }
    }

    private void Reconfigure(GroupSettings settings)
    {
        _settings = settings;
        var changedAt = _time.GetUtcNow();
        if (settings.Adaptive is { } adaptive)
        {
            _adaptive ??= new AdaptiveRate(settings.RatePerSecond, adaptive, changedAt);
            _adaptive.Reconfigure(settings.RatePerSecond, adaptive);
        }
        else
        {
            _adaptive = null;
        }

        _bucket.Reconfigure(_adaptive?.Effective ?? settings.RatePerSecond, settings.Burst, changedAt);
        _metrics.EffectiveRate(GroupId, _bucket.RatePerSecond, settings.RatePerSecond);
    }

    private void Finished(GroupProtocol.CallFinished finished)
    {
        _inFlight--;
        if (_adaptive is { } aimd && finished.Refused is { } refused)
        {
            var at = _time.GetUtcNow();
            if (refused ? aimd.Refused(at) : aimd.Succeeded(at))
            {
                _bucket.Reconfigure(aimd.Effective, _settings.Burst, at);
                _metrics.EffectiveRate(GroupId, aimd.Effective, aimd.Configured);
            }
        }

        if (finished.PauseUntil is { } pause && pause > _pausedUntil)
        {
            _pausedUntil = pause;
        }

        if (finished.RetryAt is { } retryAt && (_nextVisibleAt is null || retryAt < _nextVisibleAt))
        {
            _nextVisibleAt = retryAt;
        }

        if (_inFlight == 0)
        {
            // The next-visible time we hold may be the lease expiry of a call that just ended (a lease query sees our
            // own leases); trusting it would keep an idle actor alive for a lease duration. Look again.
            _mayHaveVisible = true;
        }
    }

    private ActorSnapshot Snapshot()
    {
        var now = _time.GetUtcNow();
        return new ActorSnapshot(_inFlight, _bucket.Available(now), _bucket.RatePerSecond, _pausedUntil > now ? _pausedUntil : null);
    }

    /// <summary>Starts what the bucket and the concurrency limit allow; true when a lease or a release is now on its way.</summary>
    private bool StartWhatWeCan()
    {
        var now = _time.GetUtcNow();
        _awaitingSlots = false;
        if (_early.Count > 0)
        {
            if (now < _pausedUntil || _settings.PausedAt is not null || _bucket.TimeUntilToken(now) > MaxLeaseLead || !_ownership.Owns(GroupId))
            {
                // Paused, slowed down by a change, or moving away: the messages would wait longer than they were leased early.
                ReleaseEarly();
                return true;
            }

            StartEarly(now);
            return false;
        }

        if (now < _pausedUntil || _settings.PausedAt is not null)
        {
            return false;
        }

        if (!_mayHaveVisible)
        {
            if (_nextVisibleAt is not { } next || next > now)
            {
                return false;
            }

            _mayHaveVisible = true;
        }

        if (now < _leaseRetryAt)
        {
            return false;
        }

        var wanted = Math.Min(
            Math.Min(_settings.MaxConcurrency - _inFlight, _bucket.WholeTokensAt(now + _leaseLead)),
            Math.Min(_options.MaxLeaseBatch, _queue.LeaseLimit));
        if (wanted <= 0)
        {
            return false;
        }

        if (!_ownership.Owns(GroupId))
        {
            // The group's shard is moving away and the stop signal is on its way: start nothing more, and retire once
            // the bucket is full if the signal never comes. (In a cluster the SQL queue also fences the lease itself by
            // the shard's epoch; this check covers the SQS queue too.)
            _mayHaveVisible = false;
            _nextVisibleAt = null;
            return false;
        }

        // Slots before the lease, so nothing is leased that could not start. Taking them is this actor's turn.
        _waiter.TakeOffer();
        var slots = _dispatcher.CallSlots.Take(wanted, _waiter);
        _awaitingSlots = slots < wanted;
        if (slots == 0)
        {
            return false;
        }

        _leaseSlots = slots;
        Task<LeaseBatch> lease;
        try
        {
            lease = _queue.LeaseAsync(GroupId, slots, _options.LeaseDuration, CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            lease = Task.FromException<LeaseBatch>(ex);
        }

        lease.PipeTo(Self, success: batch => new GroupProtocol.Leased(batch, slots, now), failure: ex => new GroupProtocol.LeaseFailed(ex, slots));
        Become(Busy);
        return true;
    }

    private void Leased(GroupProtocol.Leased leased)
    {
        var batch = leased.Batch;
        _leaseSlots = 0;
        _leaseFailures = 0;
        _dispatcher.CallSlots.Return(leased.Slots - batch.Messages.Count);

        // The calls start now, after the lease round-trip, so that is when their tokens are taken. Taking them at the
        // time the lease was asked for would let the tokens earned during a slow lease start more calls right behind
        // these, and the group would exceed burst + rate × T at its target. A message whose token is not whole yet
        // (the lease came back sooner than the lead allowed for) waits for it.
        var startedAt = _time.GetUtcNow();
        if (batch.Messages.Count > 0)
        {
            TrackLeaseTime(startedAt - leased.AskedAt);
        }

        foreach (var message in batch.Messages)
        {
            _early.Enqueue(message);
        }

        StartEarly(startedAt);

        if (batch.Messages.Count < leased.Slots)
        {
            _mayHaveVisible = false;
            _nextVisibleAt = batch.NextVisibleAt;
        }
    }

    private void LeaseFailed(GroupProtocol.LeaseFailed failed)
    {
        if (failed.Error is OutOfMemoryException)
        {
            // Not a store outage to wait out: the actor fails, and its slots and tokens are handed back as it stops.
            ExceptionDispatchInfo.Throw(failed.Error);
        }

        _leaseSlots = 0;
        _dispatcher.CallSlots.Return(failed.Slots);

        // The store is failing: back off (with jitter, capped) and try again; the outage shows in the log.
        var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 200 * Math.Pow(2, Math.Min(_leaseFailures++, 8))) * (0.5 + Random.Shared.NextDouble() / 2));
        _leaseRetryAt = _time.GetUtcNow() + delay;
        Log.LeaseFailed(_logger, GroupId, delay, failed.Error);
    }

    private void StartEarly(DateTimeOffset now)
    {
        while (_inFlight < _settings.MaxConcurrency && _early.TryPeek(out var message) && _bucket.TryTake(now))
        {
            _early.Dequeue();
            _inFlight++;
            // The token's time goes with the call: the downstream sees starts that keep burst + rate × T exactly.
            _calls.RunAsync(message, _settings, now).PipeTo(Self);
        }
    }

    private void ReleaseEarly()
    {
        var messages = _early.ToArray();
        _early.Clear();
        _calls.ReleaseAsync(messages).PipeTo(Self);
        Become(Busy);
    }

    private void PassOnUntakenSlots()
    {
        if (_waiter.TakeOffer())
        {
            _dispatcher.CallSlots.PassOn();
        }
    }

    private void TrackLeaseTime(TimeSpan took)
    {
        var decayed = _leaseLead * 0.9;
        _leaseLead = took <= decayed ? decayed : took < MaxLeaseLead ? took : MaxLeaseLead;
    }

    private bool IsIdle(DateTimeOffset now) =>
        _inFlight == 0
        && _early.Count == 0
        && !_mayHaveVisible
        && _nextVisibleAt is null
        && now >= _pausedUntil
        && now >= _leaseRetryAt
        && _bucket.TimeUntilFull(now) == TimeSpan.Zero;

    /// <summary>How long to sleep when no message arrives; null means until a message.</summary>
    private TimeSpan? NextWake(DateTimeOffset now)
    {
        if (now < _pausedUntil)
        {
            return _pausedUntil - now;
        }

        if (_settings.PausedAt is not null)
        {
            // Until the resume, which arrives as a reconfiguration; calls in flight still report back meanwhile.
            return null;
        }

        if (_early.Count > 0)
        {
            return _inFlight >= _settings.MaxConcurrency ? null : _bucket.TimeUntilToken(now);
        }

        if (_awaitingSlots)
        {
            return SlotWaitFallback;
        }

        if (!_mayHaveVisible && _nextVisibleAt is null)
        {
            // Nothing to do but let the bucket fill up so the actor can retire.
            return _inFlight > 0 ? null : _bucket.TimeUntilFull(now);
        }

        if (_inFlight >= _settings.MaxConcurrency)
        {
            return null;
        }

        var untilToken = _bucket.TimeUntilToken(now) - _leaseLead;
        if (!_mayHaveVisible && _nextVisibleAt is { } next)
        {
            var untilVisible = next - now;
            return untilVisible > untilToken ? untilVisible : untilToken;
        }

        return untilToken;
    }

    /// <summary>The deadline of the store request numbered <see cref="Request"/>; sent only to itself.</summary>
    private sealed record StoreTimedOut(long Request);

    /// <summary>What the node's call slots call when it is this actor's turn; it only posts to the mailbox.</summary>
    private sealed class SlotWaiter(IActorRef actor) : ISlotWaiter
    {
        // 1 when the call slots gave this actor a turn it has not read yet; a turn not taken is passed on.
        private int _offered;

        public void SlotsFreed()
        {
            Volatile.Write(ref _offered, 1);
            actor.Tell(GroupProtocol.SlotsFreed.Instance, ActorRefs.NoSender);
        }

        /// <summary>Clears the turn; true when there was one.</summary>
        public bool TakeOffer() => Interlocked.Exchange(ref _offered, 0) == 1;
    }

    /// <summary>
    /// One timer on <see cref="TimeProvider"/>, re-armed as the actor's next wake-up moves. Its ticks carry the
    /// generation of the arming they belong to; a tick from an earlier arming, already in the mailbox, is ignored.
    /// </summary>
    private sealed class TickTimer(IActorRef actor, TimeProvider time) : IDisposable
    {
        private ITimer? _timer;
        private long _generation;

        /// <summary>The current arming; read by the actor.</summary>
        public long Generation => Volatile.Read(ref _generation);

        public void Arm(TimeSpan due)
        {
            Interlocked.Increment(ref _generation);
            _timer ??= time.CreateTimer(static state => ((TickTimer)state!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(due, Timeout.InfiniteTimeSpan);
        }

        public void Disarm()
        {
            Interlocked.Increment(ref _generation);
            _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        public void Dispose() => _timer?.Dispose();

        private void Fire() => actor.Tell(new GroupProtocol.Tick(Generation), ActorRefs.NoSender);
    }
}
