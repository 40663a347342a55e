using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Runs a group's handler calls and makes their outcomes durable, outside the group's actor: a call takes seconds,
/// and the actor must keep reading its mailbox meanwhile. It reads nothing of the actor's state (the group's settings
/// travel with each call) and reports back only through the <see cref="GroupProtocol.CallFinished"/> it returns.
/// </summary>
internal sealed class CallRunner(
    string groupId,
    IMessageQueue queue,
    IMessageHandler handler,
    TimeProvider time,
    ProcessingOptions options,
    NodeMetrics metrics,
    CallSlots slots,
    Ingress.OutcomeWaiters outcomes,
    ILogger logger,
    CancellationToken abort)
{
    /// <summary>Calls the handler, records the outcome and gives the call's slot back; never throws.</summary>
    public async Task<GroupProtocol.CallFinished> RunAsync(LeasedMessage message, Groups.GroupSettings settings, DateTimeOffset startedAt)
    {
        DateTimeOffset? retryAt = null;
        DateTimeOffset? pauseUntil = null;
        HandlerOutcome? outcome = null;
        try
        {
            // Timestamps, not a Stopwatch object: a delivery, the common case, allocates nothing for its history.
            var started = time.GetTimestamp();
            outcome = await CallHandlerAsync(message, settings, startedAt);
            if (outcome is not null)
            {
                var report = outcome switch
                {
                    HandlerOutcome.Failed failed => new AttemptReport(startedAt, time.GetElapsedTime(started), failed.Status),
                    HandlerOutcome.Throttled throttled => new AttemptReport(startedAt, time.GetElapsedTime(started), throttled.Status),
                    HandlerOutcome.Dead => new AttemptReport(startedAt, time.GetElapsedTime(started), null),
                    HandlerOutcome.Continue next when message.Step >= settings.MaxSteps => new AttemptReport(startedAt, time.GetElapsedTime(started), next.Status),
                    _ => null,
                };
                (retryAt, pauseUntil) = await RecordAsync(message, settings, outcome, report);
            }
        }
        catch (Exception ex)
        {
            Log.OutcomeFailed(logger, message.Id, groupId, ex);
        }
        finally
        {
            slots.Return(1);
        }

        // What adaptive back-pressure counts: a 429/503 (with Retry-After or not) as a refusal, a 2xx as a success.
        bool? refused = outcome switch
        {
            HandlerOutcome.Delivered or HandlerOutcome.Continue => false,
            HandlerOutcome.Throttled => true,
            HandlerOutcome.Failed { Status: 429 or 503 } => true,
            _ => null,
        };
        return new GroupProtocol.CallFinished(retryAt, pauseUntil, refused);
    }

    /// <summary>Hands messages leased ahead of their tokens back to the queue and gives their slots back; never throws.</summary>
    public async Task<GroupProtocol.EarlyReleased> ReleaseAsync(IReadOnlyList<LeasedMessage> messages)
    {
        foreach (var message in messages)
        {
            try
            {
                await queue.ReleaseAsync(message, CancellationToken.None);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The lease runs out by itself and the message comes back then.
                Log.OutcomeFailed(logger, message.Id, groupId, ex);
            }
            finally
            {
                slots.Return(1);
            }
        }

        return GroupProtocol.EarlyReleased.Instance;
    }

    /// <summary>Runs the handler under its timeout while renewing the lease; null when the call was abandoned (shutdown or lost lease).</summary>
    private async Task<HandlerOutcome?> CallHandlerAsync(LeasedMessage message, Groups.GroupSettings settings, DateTimeOffset startedAt)
    {
        using var timeout = new CancellationTokenSource(settings.HandlerTimeout, time);
        using var leaseLost = new CancellationTokenSource();
        using var call = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, leaseLost.Token, abort);
        using var callDone = new CancellationTokenSource();
        var keepLease = KeepLeaseAsync(message, leaseLost, callDone.Token);
        try
        {
            return await handler.HandleAsync(new Delivery(message, settings, startedAt), call.Token);
        }
        catch (OperationCanceledException) when (leaseLost.IsCancellationRequested)
        {
            Log.LeaseLost(logger, message.Id, groupId);
            return null;
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            await queue.ReleaseAsync(message, CancellationToken.None);
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
        using var timer = new PeriodicTimer(options.LeaseDuration / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    if (!await queue.ExtendAsync(message, options.LeaseDuration, CancellationToken.None))
                    {
                        await leaseLost.CancelAsync();
                        return;
                    }
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Two thirds of the lease are left; the next tick tries again.
                    Log.ExtendFailed(logger, message.Id, groupId, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The call is over.
        }
    }

    /// <summary>Makes the outcome durable; returns when the message is next visible and until when the group pauses.</summary>
    private async Task<(DateTimeOffset? RetryAt, DateTimeOffset? PauseUntil)> RecordAsync(LeasedMessage message, Groups.GroupSettings settings, HandlerOutcome outcome, AttemptReport? report)
    {
        var now = time.GetUtcNow();
        switch (outcome)
        {
            case HandlerOutcome.Delivered delivered:
                if (await queue.CompleteAsync(message, delivered.Result, CancellationToken.None))
                {
                    metrics.Delivered(groupId);
                    outcomes.Announce(message.Id);
                }

                return (null, null);

            case HandlerOutcome.Continue next when message.Step >= settings.MaxSteps:
                await DeadLetterAsync(message, $"step {message.Step} asked for another ({HttpForwardHandler.ContinueHeader}), and the group allows {settings.MaxSteps} steps (maxSteps)", report);
                return (null, null);

            case HandlerOutcome.Continue next:
                // The next step is visible at once and waits for a token like any message.
                await queue.ContinueAsync(message, next.Cursor, next.Status, CancellationToken.None);
                return (now, null);

            case HandlerOutcome.Throttled throttled when message.Throttles < options.MaxConsecutiveThrottles:
                var until = now + ThrottlePause(throttled.RetryAfter);
                if (await queue.RetryAsync(message, until, throttled.Error, RetryKind.Throttled, CancellationToken.None, report))
                {
                    metrics.Throttled(groupId);
                    Log.GroupThrottled(logger, groupId, until, throttled.Error);
                }

                return (until, until);

            case HandlerOutcome.Throttled throttled:
                // Refused this often in a row, the message is not being paced but turned away: the attempt counts, so a
                // downstream that never takes it sends it to the dead letters instead of keeping it forever. The group
                // still pauses as asked.
                var pausedUntil = now + ThrottlePause(throttled.RetryAfter);
                var counted = $"{throttled.Error} (throttled {message.Throttles + 1} times in a row; past {options.MaxConsecutiveThrottles} each counts as an attempt)";
                if (message.Attempt >= settings.MaxAttempts)
                {
                    await DeadLetterAsync(message, counted, report);
                    return (null, pausedUntil);
                }

                var backoffUntil = now + RetryBackoff.Delay(message.Attempt, settings.BackoffInitial, settings.BackoffMax, Random.Shared);
                var retryAfterBoth = backoffUntil > pausedUntil ? backoffUntil : pausedUntil;
                if (await queue.RetryAsync(message, retryAfterBoth, counted, RetryKind.ThrottledCounted, CancellationToken.None, report))
                {
                    metrics.Throttled(groupId);
                    metrics.Failed(groupId);
                    Log.GroupThrottled(logger, groupId, pausedUntil, throttled.Error);
                    Log.AttemptFailed(logger, message.Id, groupId, message.Attempt, counted, retryAfterBoth);
                }

                return (retryAfterBoth, pausedUntil);

            case HandlerOutcome.Failed failed when message.Attempt < settings.MaxAttempts:
                var retryAt = now + RetryBackoff.Delay(message.Attempt, settings.BackoffInitial, settings.BackoffMax, Random.Shared);
                if (await queue.RetryAsync(message, retryAt, failed.Error, RetryKind.Failed, CancellationToken.None, report))
                {
                    metrics.Failed(groupId);
                    Log.AttemptFailed(logger, message.Id, groupId, message.Attempt, failed.Error, retryAt);
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
        retryAfter < options.MinThrottlePause ? options.MinThrottlePause
        : retryAfter > options.MaxThrottlePause ? options.MaxThrottlePause
        : retryAfter;

    private async Task DeadLetterAsync(LeasedMessage message, string error, AttemptReport? report = null)
    {
        if (await queue.DeadLetterAsync(message, error, CancellationToken.None, report))
        {
            outcomes.Announce(message.Id);
            metrics.Failed(groupId);
            metrics.DeadLettered(groupId);
            Log.DeadLettered(logger, message.Id, groupId, message.Attempt, error);
        }
    }
}
