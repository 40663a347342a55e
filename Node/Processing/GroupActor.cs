using System.Threading.Channels;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// One group's actor: the only code that changes the group's token bucket, in-flight count and pause. Everything
/// else talks to it through its mailbox. The loop:
/// <code>
///   ┌─▶ apply signals (wake, reconfigure, finished, stop, inspect)
///   │   lease n = min(free slots, whole tokens) visible messages, start a handler call for each
///   │   idle (nothing pending or in flight, bucket full)? ──▶ retire (the dispatcher makes a new actor on the next wake)
///   └── wait for a signal, the next token, the next visible message or the end of a pause
/// </code>
/// It leases only what it can start at once, so no lease is burnt waiting for a token. It retires only with a
/// full bucket, because a fresh actor starts full: retiring earlier would hand out a second burst. (An actor that
/// fails leaves its tokens with the dispatcher for the next one, for the same reason.)
/// </summary>
internal sealed class GroupActor : ISlotWaiter
{
    // An actor in line for the node's call slots is woken when calls finish; this is only the safety net.
    private static readonly TimeSpan SlotWaitFallback = TimeSpan.FromSeconds(1);

    // A timer shorter than this is not worth arming; the loop re-checks the bucket anyway.
    private static readonly TimeSpan MinimumWait = TimeSpan.FromMilliseconds(1);

    // The longest one timer is armed for. A timer cannot hold more than about 49.7 days, and a tiny rate's next token
    // or a message delayed for months is further off than that: the actor wakes at this step, finds nothing to do and
    // waits again. A daily wake costs nothing.
    private static readonly TimeSpan MaximumWait = TimeSpan.FromDays(1);

    // The furthest ahead of its tokens a lease may start, and the longest a message leased early may wait for one.
    private static readonly TimeSpan MaxLeaseLead = TimeSpan.FromMilliseconds(100);

    private readonly Channel<Signal> _mailbox = Channel.CreateUnbounded<Signal>();
    private readonly GroupDispatcher _dispatcher;
    private readonly IMessageQueue _queue;
    private readonly IMessageHandler _handler;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly CancellationToken _abort;
    private readonly ShardOwnership _ownership;

    private GroupSettings _settings;
    private readonly TokenBucket _bucket;

    // The group's AIMD state when its definition enables it; it lives with this actor (a new actor starts at the configured rate).
    private AdaptiveRate? _adaptive;
    private int _inFlight;
    private DateTimeOffset _pausedUntil;
    private bool _mayHaveVisible = true;
    private DateTimeOffset? _nextVisibleAt;
    private bool _stopping;
    private int _leaseFailures;

    // Leases start this far ahead of the tokens they are for: a bucket at its cap gains nothing while a lease is on its
    // way, so a burst-1 group that leased only once its token was whole lost a lease round trip of refill per message.
    // The slowest recent lease, decaying.
    private TimeSpan _leaseLead;

    // Messages leased ahead of their tokens; each starts when its token is whole, so starts still obey the bucket.
    private readonly Queue<LeasedMessage> _early = new();

    // The last lease got fewer node-wide call slots than it wanted: the actor is in line for more.
    private bool _awaitingSlots;

    // 1 when the node's call slots woke this actor for its turn; a turn not taken is passed on.
    private int _slotsOffered;

    // 1 while a wake-up sits unread in the mailbox: a busy group gets one per ingest, and one unread is as good as many.
    private int _wakePending;

    public GroupActor(
        GroupSettings settings,
        GroupDispatcher dispatcher,
        IMessageQueue queue,
        IMessageHandler handler,
        TimeProvider time,
        ProcessingOptions options,
        NodeMetrics metrics,
        ILogger logger,
        ShardOwnership ownership,
        double? startTokens,
        CancellationToken abort)
    {
        _settings = settings;
        _dispatcher = dispatcher;
        _queue = queue;
        _handler = handler;
        _time = time;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _abort = abort;
        _ownership = ownership;
        _bucket = new TokenBucket(settings.RatePerSecond, settings.Burst, time.GetUtcNow(), startTokens);
        _adaptive = settings.Adaptive is { } adaptive ? new AdaptiveRate(settings.RatePerSecond, adaptive, time.GetUtcNow()) : null;
        Completion = Task.CompletedTask;
    }

    public string GroupId => _settings.Id;

    /// <summary>Completes when the loop has ended: retired, or stopped with nothing in flight.</summary>
    public Task Completion { get; private set; }

    public bool HasSignals => _mailbox.Reader.TryPeek(out _);

    /// <summary>The bucket's tokens at <paramref name="now"/>; read only once <see cref="Completion"/> has finished, when nothing else touches it.</summary>
    public double RemainingTokens(DateTimeOffset now) => _bucket.Available(now);

    public void Start()
    {
        Log.ActorStarted(_logger, GroupId);
        Completion = Task.Run(RunAsync);
    }

    public void Wake()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _mailbox.Writer.TryWrite(Signal.WakeUp);
        }
    }

    void ISlotWaiter.SlotsFreed()
    {
        Volatile.Write(ref _slotsOffered, 1);
        Wake();
    }

    public void Reconfigure(GroupSettings settings) => _mailbox.Writer.TryWrite(new Signal.Reconfigure(settings));

    public void Stop() => _mailbox.Writer.TryWrite(Signal.StopNow);

    public Task<ActorSnapshot> InspectAsync()
    {
        var inspect = new Signal.Inspect(new TaskCompletionSource<ActorSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously));
        _mailbox.Writer.TryWrite(inspect);
        return inspect.Reply.Task;
    }

    private async Task RunAsync()
    {
        try
        {
            while (true)
            {
                while (_mailbox.Reader.TryRead(out var signal))
                {
                    Apply(signal);
                }

                if (_stopping)
                {
                    await ReleaseEarlyAsync();
                    PassOnUntakenSlots();
                    if (_inFlight == 0)
                    {
                        return;
                    }

                    await WaitAsync(null);
                    continue;
                }

                var retryIn = await StartWhatWeCanAsync();
                PassOnUntakenSlots();
                var now = _time.GetUtcNow();
                if (retryIn is null && IsIdle(now))
                {
                    if (_dispatcher.TryRetire(this))
                    {
                        // It may still be in line for slots from an earlier lease; its turn must not be lost with it.
                        _dispatcher.CallSlots.PassOn();
                        _metrics.EffectiveRate(GroupId, _settings.RatePerSecond, _settings.RatePerSecond);
                        Log.ActorRetired(_logger, GroupId);
                        return;
                    }

                    continue;
                }

                await WaitAsync(retryIn ?? NextWake(now));
            }
        }
        catch (Exception ex)
        {
            Log.ActorFailed(_logger, GroupId, ex);

            // The early messages' leases run out by themselves; their slots must come back now.
            _dispatcher.CallSlots.Return(_early.Count);
            _early.Clear();

            // The next actor of the group starts from this one's tokens: a fresh, full bucket would be a burst the group
            // never earned, once per failure.
            var failedAt = _time.GetUtcNow();
            _dispatcher.Failed(this, _bucket.Available(failedAt), failedAt);
        }
    }

    private void PassOnUntakenSlots()
    {
        if (Interlocked.Exchange(ref _slotsOffered, 0) == 1)
        {
            _dispatcher.CallSlots.PassOn();
        }
    }

    private void Apply(Signal signal)
    {
        switch (signal)
        {
            case Signal.Wake:
                // Cleared before the lease that follows, so a message committed after this point wakes the actor again.
                Volatile.Write(ref _wakePending, 0);
                _mayHaveVisible = true;
                break;
            case Signal.Reconfigure reconfigure:
                _settings = reconfigure.Settings;
                var changedAt = _time.GetUtcNow();
                if (reconfigure.Settings.Adaptive is { } adaptive)
                {
                    _adaptive ??= new AdaptiveRate(reconfigure.Settings.RatePerSecond, adaptive, changedAt);
                    _adaptive.Reconfigure(reconfigure.Settings.RatePerSecond, adaptive);
                }
                else
                {
                    _adaptive = null;
                }

                _bucket.Reconfigure(_adaptive?.Effective ?? reconfigure.Settings.RatePerSecond, reconfigure.Settings.Burst, changedAt);
                _metrics.EffectiveRate(GroupId, _bucket.RatePerSecond, reconfigure.Settings.RatePerSecond);
                break;
            case Signal.Finished finished:
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
                    // The next-visible time we hold may be the lease expiry of a call that just ended (a lease query
                    // sees our own leases); trusting it would keep an idle actor alive for a lease duration. Look again.
                    _mayHaveVisible = true;
                }

                break;
            case Signal.Stop:
                _stopping = true;
                break;
            case Signal.Inspect inspect:
                var now = _time.GetUtcNow();
                inspect.Reply.TrySetResult(new ActorSnapshot(
                    _inFlight,
                    _bucket.Available(now),
                    _bucket.RatePerSecond,
                    _pausedUntil > now ? _pausedUntil : null));
                break;
        }
    }

    /// <summary>Leases and starts what the bucket and the concurrency limit allow; returns a retry delay when the queue failed.</summary>
    private async Task<TimeSpan?> StartWhatWeCanAsync()
    {
        var now = _time.GetUtcNow();
        _awaitingSlots = false;
        if (_early.Count > 0)
        {
            if (now < _pausedUntil || _settings.PausedAt is not null || _bucket.TimeUntilToken(now) > MaxLeaseLead || !_ownership.Owns(GroupId))
            {
                // Paused, slowed down by a change, or moving away: the messages would wait longer than they were leased early.
                await ReleaseEarlyAsync();
            }
            else
            {
                StartEarly(now);
                return null;
            }
        }

        if (now < _pausedUntil || _settings.PausedAt is not null)
        {
            return null;
        }

        if (!_mayHaveVisible)
        {
            if (_nextVisibleAt is not { } next || next > now)
            {
                return null;
            }

            _mayHaveVisible = true;
        }

        var wanted = Math.Min(
            Math.Min(_settings.MaxConcurrency - _inFlight, _bucket.WholeTokensAt(now + _leaseLead)),
            Math.Min(_options.MaxLeaseBatch, _queue.LeaseLimit));
        if (wanted <= 0)
        {
            return null;
        }

        if (!_ownership.Owns(GroupId))
        {
            // The group's shard is moving away and the stop signal is on its way: start nothing more, and retire once
            // the bucket is full if the signal never comes. (In a cluster the SQL queue also fences the lease itself by
            // the shard's epoch; this check covers the SQS queue too.)
            _mayHaveVisible = false;
            _nextVisibleAt = null;
            return null;
        }

        // Slots before the lease, so nothing is leased that could not start. Taking them is this actor's turn.
        Volatile.Write(ref _slotsOffered, 0);
        var slots = _dispatcher.CallSlots.Take(wanted, this);
        _awaitingSlots = slots < wanted;
        if (slots == 0)
        {
            return null;
        }

        LeaseBatch batch;
        try
        {
            batch = await _queue.LeaseAsync(GroupId, slots, _options.LeaseDuration, CancellationToken.None);
            _leaseFailures = 0;
            _dispatcher.CallSlots.Return(slots - batch.Messages.Count);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _dispatcher.CallSlots.Return(slots);
            // The store is failing: back off (with jitter, capped) and try again; the outage shows in the log.
            var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 200 * Math.Pow(2, Math.Min(_leaseFailures++, 8))) * (0.5 + Random.Shared.NextDouble() / 2));
            Log.LeaseFailed(_logger, GroupId, delay, ex);
            return delay;
        }

        // The calls start now, after the lease round-trip, so that is when their tokens are taken. Taking them at the
        // time the lease was asked for would let the tokens earned during a slow lease start more calls right behind
        // these, and the group would exceed burst + rate × T at its target. A message whose token is not whole yet
        // (the lease came back sooner than the lead allowed for) waits for it.
        var startedAt = _time.GetUtcNow();
        if (batch.Messages.Count > 0)
        {
            TrackLeaseTime(startedAt - now);
        }

        foreach (var message in batch.Messages)
        {
            _early.Enqueue(message);
        }

        StartEarly(startedAt);

        if (batch.Messages.Count < slots)
        {
            _mayHaveVisible = false;
            _nextVisibleAt = batch.NextVisibleAt;
        }

        return null;
    }

    private void StartEarly(DateTimeOffset now)
    {
        while (_inFlight < _settings.MaxConcurrency && _early.TryPeek(out var message) && _bucket.TryTake(now))
        {
            _early.Dequeue();
            _inFlight++;
            _ = RunHandlerAsync(message, _settings);
        }
    }

    private async Task ReleaseEarlyAsync()
    {
        while (_early.TryDequeue(out var message))
        {
            try
            {
                await _queue.ReleaseAsync(message, CancellationToken.None);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The lease runs out by itself and the message comes back then.
                Log.OutcomeFailed(_logger, message.Id, GroupId, ex);
            }
            finally
            {
                _dispatcher.CallSlots.Return(1);
            }
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
        && _bucket.TimeUntilFull(now) == TimeSpan.Zero;

    /// <summary>How long to sleep when no signal arrives; null means until a signal.</summary>
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

    private async Task WaitAsync(TimeSpan? delay)
    {
        if (HasSignals)
        {
            return;
        }

        if (delay is null)
        {
            await _mailbox.Reader.WaitToReadAsync();
            return;
        }

        using var cancel = new CancellationTokenSource();
        var signal = _mailbox.Reader.WaitToReadAsync(cancel.Token).AsTask();
        var timer = Task.Delay(delay.Value < MinimumWait ? MinimumWait : delay.Value > MaximumWait ? MaximumWait : delay.Value, _time, cancel.Token);
        await Task.WhenAny(signal, timer);
        cancel.Cancel();
    }

    private async Task RunHandlerAsync(LeasedMessage message, GroupSettings settings)
    {
        DateTimeOffset? retryAt = null;
        DateTimeOffset? pauseUntil = null;
        HandlerOutcome? outcome = null;
        try
        {
            // Timestamps, not a Stopwatch object: a delivery, the common case, allocates nothing for its history.
            var startedAt = _time.GetUtcNow();
            var started = _time.GetTimestamp();
            outcome = await CallHandlerAsync(message, settings);
            if (outcome is not null)
            {
                var report = outcome switch
                {
                    HandlerOutcome.Failed failed => new AttemptReport(startedAt, _time.GetElapsedTime(started), failed.Status),
                    HandlerOutcome.Throttled throttled => new AttemptReport(startedAt, _time.GetElapsedTime(started), throttled.Status),
                    HandlerOutcome.Dead => new AttemptReport(startedAt, _time.GetElapsedTime(started), null),
                    HandlerOutcome.Continue next when message.Step >= settings.MaxSteps => new AttemptReport(startedAt, _time.GetElapsedTime(started), next.Status),
                    _ => null,
                };
                (retryAt, pauseUntil) = await RecordAsync(message, settings, outcome, report);
            }
        }
        catch (Exception ex)
        {
            Log.OutcomeFailed(_logger, message.Id, GroupId, ex);
        }
        finally
        {
            _dispatcher.CallSlots.Return(1);
            // What adaptive back-pressure counts: a 429/503 (with Retry-After or not) as a refusal, a 2xx as a success.
            bool? refused = outcome switch
            {
                HandlerOutcome.Delivered or HandlerOutcome.Continue => false,
                HandlerOutcome.Throttled => true,
                HandlerOutcome.Failed { Status: 429 or 503 } => true,
                _ => null,
            };
            _mailbox.Writer.TryWrite(new Signal.Finished(retryAt, pauseUntil, refused));
        }
    }

    /// <summary>Runs the handler under its timeout while renewing the lease; null when the call was abandoned (shutdown or lost lease).</summary>
    private async Task<HandlerOutcome?> CallHandlerAsync(LeasedMessage message, GroupSettings settings)
    {
        using var timeout = new CancellationTokenSource(settings.HandlerTimeout, _time);
        using var leaseLost = new CancellationTokenSource();
        using var call = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, leaseLost.Token, _abort);
        using var callDone = new CancellationTokenSource();
        var keepLease = KeepLeaseAsync(message, leaseLost, callDone.Token);
        try
        {
            return await _handler.HandleAsync(new Delivery(message, settings), call.Token);
        }
        catch (OperationCanceledException) when (leaseLost.IsCancellationRequested)
        {
            Log.LeaseLost(_logger, message.Id, GroupId);
            return null;
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            await _queue.ReleaseAsync(message, CancellationToken.None);
            return null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return new HandlerOutcome.Failed($"timed out after {settings.HandlerTimeout.TotalSeconds:0.###} s");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A handler fault is a failed attempt like any other: the message is retried, then dead-lettered.
            return new HandlerOutcome.Failed($"{ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            await callDone.CancelAsync();
            await keepLease;
        }
    }

    private async Task KeepLeaseAsync(LeasedMessage message, CancellationTokenSource leaseLost, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_options.LeaseDuration / 3, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    if (!await _queue.ExtendAsync(message, _options.LeaseDuration, CancellationToken.None))
                    {
                        await leaseLost.CancelAsync();
                        return;
                    }
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Two thirds of the lease are left; the next tick tries again.
                    Log.ExtendFailed(_logger, message.Id, GroupId, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The call is over.
        }
    }

    /// <summary>Makes the outcome durable; returns when the message is next visible and until when the group pauses.</summary>
    private async Task<(DateTimeOffset? RetryAt, DateTimeOffset? PauseUntil)> RecordAsync(LeasedMessage message, GroupSettings settings, HandlerOutcome outcome, AttemptReport? report)
    {
        var now = _time.GetUtcNow();
        switch (outcome)
        {
            case HandlerOutcome.Delivered delivered:
                if (await _queue.CompleteAsync(message, delivered.Result, CancellationToken.None))
                {
                    _metrics.Delivered(GroupId);
                    _dispatcher.Outcomes.Announce(message.Id);
                }

                return (null, null);

            case HandlerOutcome.Continue next when message.Step >= settings.MaxSteps:
                await DeadLetterAsync(message, $"step {message.Step} asked for another ({HttpForwardHandler.ContinueHeader}), and the group allows {settings.MaxSteps} steps (maxSteps)", report);
                return (null, null);

            case HandlerOutcome.Continue next:
                // The next step is visible at once and waits for a token like any message.
                await _queue.ContinueAsync(message, next.Cursor, next.Status, CancellationToken.None);
                return (now, null);

            case HandlerOutcome.Throttled throttled when message.Throttles < _options.MaxConsecutiveThrottles:
                var until = now + ThrottlePause(throttled.RetryAfter);
                if (await _queue.RetryAsync(message, until, throttled.Error, RetryKind.Throttled, CancellationToken.None, report))
                {
                    _metrics.Throttled(GroupId);
                    Log.GroupThrottled(_logger, GroupId, until, throttled.Error);
                }

                return (until, until);

            case HandlerOutcome.Throttled throttled:
                // Refused this often in a row, the message is not being paced but turned away: the attempt counts, so a
                // downstream that never takes it sends it to the dead letters instead of keeping it forever. The group
                // still pauses as asked.
                var pausedUntil = now + ThrottlePause(throttled.RetryAfter);
                var counted = $"{throttled.Error} (throttled {message.Throttles + 1} times in a row; past {_options.MaxConsecutiveThrottles} each counts as an attempt)";
                if (message.Attempt >= settings.MaxAttempts)
                {
                    await DeadLetterAsync(message, counted, report);
                    return (null, pausedUntil);
                }

                var backoffUntil = now + RetryBackoff.Delay(message.Attempt, settings.BackoffInitial, settings.BackoffMax, Random.Shared);
                var retryAfterBoth = backoffUntil > pausedUntil ? backoffUntil : pausedUntil;
                if (await _queue.RetryAsync(message, retryAfterBoth, counted, RetryKind.ThrottledCounted, CancellationToken.None, report))
                {
                    _metrics.Throttled(GroupId);
                    _metrics.Failed(GroupId);
                    Log.GroupThrottled(_logger, GroupId, pausedUntil, throttled.Error);
                    Log.AttemptFailed(_logger, message.Id, GroupId, message.Attempt, counted, retryAfterBoth);
                }

                return (retryAfterBoth, pausedUntil);

            case HandlerOutcome.Failed failed when message.Attempt < settings.MaxAttempts:
                var retryAt = now + RetryBackoff.Delay(message.Attempt, settings.BackoffInitial, settings.BackoffMax, Random.Shared);
                if (await _queue.RetryAsync(message, retryAt, failed.Error, RetryKind.Failed, CancellationToken.None, report))
                {
                    _metrics.Failed(GroupId);
                    Log.AttemptFailed(_logger, message.Id, GroupId, message.Attempt, failed.Error, retryAt);
                }

                return (retryAt, null);

            case HandlerOutcome.Failed failed:
                await DeadLetterAsync(message, failed.Error, report);
                return (null, null);

            case HandlerOutcome.Dead dead:
                await DeadLetterAsync(message, dead.Reason, report);
                return (null, null);

            default:
                throw new InvalidOperationException($"Unknown handler outcome {outcome.GetType().Name}.");
        }
    }

    /// <summary>
    /// How long the group pauses for a Retry-After: at least the minimum, since "0" or a date in the past would call the
    /// downstream again at once, in a loop; at most the maximum, since a typo in a header would stall the group for days.
    /// </summary>
    private TimeSpan ThrottlePause(TimeSpan retryAfter) =>
        retryAfter < _options.MinThrottlePause ? _options.MinThrottlePause
        : retryAfter > _options.MaxThrottlePause ? _options.MaxThrottlePause
        : retryAfter;

    private async Task DeadLetterAsync(LeasedMessage message, string error, AttemptReport? report = null)
    {
        if (await _queue.DeadLetterAsync(message, error, CancellationToken.None, report))
        {
            _dispatcher.Outcomes.Announce(message.Id);
            _metrics.Failed(GroupId);
            _metrics.DeadLettered(GroupId);
            Log.DeadLettered(_logger, message.Id, GroupId, message.Attempt, error);
        }
    }

    private abstract record Signal
    {
        public static readonly Wake WakeUp = new();
        public static readonly Stop StopNow = new();

        public sealed record Wake : Signal;

        public sealed record Reconfigure(GroupSettings Settings) : Signal;

        public sealed record Finished(DateTimeOffset? RetryAt, DateTimeOffset? PauseUntil, bool? Refused) : Signal;

        public sealed record Stop : Signal;

        public sealed record Inspect(TaskCompletionSource<ActorSnapshot> Reply) : Signal;
    }
}
