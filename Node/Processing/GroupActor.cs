using System.Runtime.ExceptionServices;
using Akka.Actor;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// One group's actor (an Akka.NET actor): the only code that changes the group's token bucket, in-flight count,
/// pause and AIMD state. Everything else talks to it through its mailbox (<see cref="GroupProtocol"/>).
/// <code>
///   Wake, Reconfigure, CallFinished, SlotsFreed, Stop, Tick ── each queues one Evaluate behind what is in the mailbox
///        │
///        ▼
///   ┌─▶ Ready ── Evaluate: start the calls the bucket, the concurrency limit and the node's call slots allow
///   │      ├── a lease (or a release of messages leased early) started ──▶ Busy: stash everything but its outcome ─┐
///   │      ├── idle (nothing pending or in flight, bucket full) ──▶ retire, if the dispatcher has nothing on its way │
///   │      └── otherwise arm the timer: next token, next visible message, end of a pause                           │
///   └──────────────────────────────────────────────── Leased / LeaseFailed / EarlyReleased: unstash ◀──────────────┘
/// </code>
/// Nothing inside blocks or awaits: a lease, a handler call and a release are started here and their outcomes piped
/// back as messages. It leases only what it can start at once, so no lease is burnt waiting for a token. It retires
/// only with a full bucket, because a fresh actor starts full: retiring earlier would hand out a second burst. (An
/// actor that fails leaves its tokens with the dispatcher for the next one, for the same reason.) Its timer runs on
/// <see cref="TimeProvider"/>, not Akka's scheduler: that ticks every 10 ms, and a burst-1 group loses whatever its
/// timer is late on every message.
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
    private readonly GroupDispatcher _dispatcher;
    private readonly IMessageQueue _queue;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ShardOwnership _ownership;
    private readonly CallRunner _calls;
    private readonly TokenBucket _bucket;

    // Messages leased ahead of their tokens; each starts when its token is whole, so starts still obey the bucket.
    private readonly Queue<LeasedMessage> _early = new();

    private GroupSettings _settings;

    // The group's AIMD state when its definition enables it; it lives with this actor (a new actor starts at the configured rate).
    private AdaptiveRate? _adaptive;
    private int _inFlight;
    private DateTimeOffset _pausedUntil;
    private bool _mayHaveVisible = true;
    private DateTimeOffset? _nextVisibleAt;
    private bool _stopping;
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

    // Messages read from the dispatcher; it lets the actor retire only when it has sent no more than these.
    private int _received;

    // Retired or stopped by its own decision; a stop without it is a failure (or the actor system going down).
    private bool _ended;
    private Exception? _failure;

    public GroupActor(GroupActorHandle handle, GroupSettings settings, double? startTokens, GroupDispatcher dispatcher, CallRunner calls)
    {
        _handle = handle;
        _settings = settings;
        _dispatcher = dispatcher;
        _calls = calls;
        _queue = dispatcher.Queue;
        _time = dispatcher.Time;
        _options = dispatcher.Options;
        _metrics = dispatcher.Metrics;
        _logger = dispatcher.Logger;
        _ownership = dispatcher.Ownership;
        var now = _time.GetUtcNow();
        _bucket = new TokenBucket(settings.RatePerSecond, settings.Burst, now, startTokens);
        _adaptive = settings.Adaptive is { } adaptive ? new AdaptiveRate(settings.RatePerSecond, adaptive, now) : null;
    }

    public IStash Stash { get; set; } = null!;

    private string GroupId => _settings.Id;

    protected override void PreStart()
    {
        _waiter = new SlotWaiter(Self);
        _timer = new TickTimer(Self, _time);
        Log.ActorStarted(_logger, GroupId);

        // A new actor looks for visible messages at once, as it was made by a wake-up.
        EvaluateSoon();
    }

    protected override void PostStop()
    {
        _timer.Dispose();
        var now = _time.GetUtcNow();
        if (!_ended)
        {
            // The early messages' leases run out by themselves; their slots must come back now.
            _dispatcher.CallSlots.Return(_early.Count + _leaseSlots);
            _early.Clear();

            // The next actor of the group starts from this one's tokens: a fresh, full bucket would be a burst the group
            // never earned, once per failure. Logged after the dispatcher has let go, so a wake-up from then on makes it.
            _dispatcher.Failed(_handle, _bucket.Available(now), now);
            if (_failure is not null)
            {
                Log.ActorFailed(_logger, GroupId, _failure);
            }
        }

        // It may still be in line for call slots, or have been given a turn it never read: the turn must not die with it.
        _dispatcher.CallSlots.Leave(_waiter);
        PassOnUntakenSlots();
        _handle.Stopped(_bucket.Available(now), now, _bucket.RatePerSecond, _bucket.Burst);
    }

    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception ex)
        {
            // The supervisor stops the actor (GroupActorSupervision); PostStop logs this once the tokens are saved.
            _failure = ex;
            throw;
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GroupProtocol.Wake:
                _received++;

                // Cleared before the lease that follows, so a message committed after this point wakes the actor again.
                _handle.WakeRead();
                _mayHaveVisible = true;
                EvaluateSoon();
                break;
            case GroupProtocol.SlotsFreed:
                _mayHaveVisible = true;
                EvaluateSoon();
                break;
            case GroupProtocol.Reconfigure reconfigure:
                _received++;
                Reconfigure(reconfigure.Settings);
                EvaluateSoon();
                break;
            case GroupProtocol.CallFinished finished:
                Finished(finished);
                EvaluateSoon();
                break;
            case GroupProtocol.Stop:
                _received++;
                _stopping = true;
                EvaluateSoon();
                break;
            case GroupProtocol.Inspect:
                _received++;
                Sender.Tell(Snapshot());

                // It may be what kept the actor from retiring.
                EvaluateSoon();
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
                _ended = true;
                Context.Stop(Self);
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
            if (_dispatcher.TryRetire(_handle, _received))
            {
                _ended = true;
                _metrics.EffectiveRate(GroupId, _settings.RatePerSecond, _settings.RatePerSecond);
                Log.ActorRetired(_logger, GroupId);
                Context.Stop(Self);
            }

            // Refused: a message from the dispatcher is in the mailbox, and reading it evaluates again.
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
            _calls.RunAsync(message, _settings).PipeTo(Self);
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
