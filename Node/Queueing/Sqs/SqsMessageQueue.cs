using System.Collections.Concurrent;
using System.Globalization;
using Amazon.SQS;
using Amazon.SQS.Model;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// The queue as one SQS queue per group. SQS holds the queued messages; the store keeps a bodiless record of each
/// (<see cref="MessageRecords"/>), which carries dedup, status, counters and dead letters exactly as in the store
/// queue mode. Ingest is: reserve the record (and the delivery id), send to SQS, confirm the record; only then 202.
/// <list type="bullet">
/// <item>A lease is a receive with the lease as visibility timeout; extension and a failed attempt's backoff are
/// ChangeMessageVisibility; the attempt number is SQS's receive count plus the attempts an earlier copy spent.</item>
/// <item>A throttled attempt or a release must not count, and SQS's receive count only grows: the message is sent
/// again carrying the attempts spent so far, and the received copy deleted.</item>
/// <item>A dead letter leaves SQS for the store, body and all, so listing and redrive are the store's.</item>
/// </list>
/// </summary>
public sealed class SqsMessageQueue : RecordedMessageQueue, IMessageQueue
{
    /// <summary>The longest wait the AWS SDK's standard retry mode puts between two attempts.</summary>
    private static readonly TimeSpan SdkMaxBackoff = TimeSpan.FromSeconds(20);

    /// <summary>SQS's longest visibility timeout.</summary>
    private static readonly TimeSpan MaxVisibility = TimeSpan.FromHours(12);

    /// <summary>ReceiveMessage hands out at most this many messages a call.</summary>
    private const int MaxReceive = 10;

    private const string ReceiveCountAttribute = "ApproximateReceiveCount";
    private static readonly List<string> BacklogAttributes =
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"];

    private static readonly List<string> RecoveryAttributes = [.. BacklogAttributes, "VisibilityTimeout"];

    private static readonly TimeSpan DefaultHandlerTimeout = TimeSpan.FromSeconds(GroupSettings.DefaultHandlerTimeoutSeconds);

    /// <summary>The longest pause between receives while a group's queued messages are all hidden.</summary>
    private static readonly TimeSpan MaxHiddenPoll = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive empty receives per group whose records say messages are queued; only such groups have an entry.</summary>
    private readonly ConcurrentDictionary<string, int> _emptyReceives = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, GroupQueue> _queues = new(StringComparer.Ordinal);
    private readonly IAmazonSQS _client;
    private readonly SqsSendBatcher _sender;
    private readonly IPayloadStore _payloads;
    private readonly SqsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public SqsMessageQueue(IAmazonSQS client, SqsSendBatcher sender, MessageRecords records, IPayloadStore payloads, SqsOptions options, TimeProvider time, ILogger<SqsMessageQueue> logger)
        : base(records)
    {
        _client = client;
        _sender = sender;
        _payloads = payloads;
        _options = options;
        _time = time;
        _logger = logger;
        foreach (var (groupId, name, url) in LoadQueueMap())
        {
            _queues[groupId] = new GroupQueue(name, url, null);
        }
    }

    /// <summary>
    /// The queue's own visibility timeout, which a receive without one (an operator's peek, another tool) gets: well
    /// above the handler timeout, as AWS advises. This node's receives pass its lease instead and renew it while a
    /// handler runs, so a crashed node's messages come back after a lease, not after twice a handler timeout.
    /// </summary>
    public static TimeSpan VisibilityFor(TimeSpan handlerTimeout) => Clamp(handlerTimeout * 2, TimeSpan.FromMinutes(1), MaxVisibility);

    public Task PrepareGroupAsync(string groupId, TimeSpan handlerTimeout, CancellationToken cancellationToken) =>
        EnsureQueueAsync(groupId, VisibilityFor(handlerTimeout), cancellationToken);

    /// <summary>Makes the group's queue exist with this visibility timeout, unless this node already saw to it.</summary>
    private async Task EnsureQueueAsync(string groupId, TimeSpan visibility, CancellationToken cancellationToken)
    {
        if (_queues.TryGetValue(groupId, out var known) && known.Visibility == visibility)
        {
            return;
        }

        await Unavailable("prepare the SQS queue of group " + groupId, async () =>
        {
            var name = SqsQueueNames.For(_options.QueuePrefix, groupId);
            var attributes = new Dictionary<string, string> { ["VisibilityTimeout"] = Seconds(visibility) };
            string url;
            try
            {
                url = (await _client.GetQueueUrlAsync(name, cancellationToken)).QueueUrl;
                await _client.SetQueueAttributesAsync(url, attributes, cancellationToken);
            }
            catch (Exception e) when (SqsErrors.IsMissingQueue(e))
            {
                url = (await _client.CreateQueueAsync(new CreateQueueRequest { QueueName = name, Attributes = attributes }, cancellationToken)).QueueUrl;
            }

            await RememberQueueAsync(groupId, name, url);
            _queues[groupId] = new GroupQueue(name, url, visibility);
        });
    }

    public async Task RemoveGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        var name = _queues.TryGetValue(groupId, out var known) ? known.Name : SqsQueueNames.For(_options.QueuePrefix, groupId);
        await Unavailable("delete the SQS queue of group " + groupId, async () =>
        {
            try
            {
                var url = known?.Url ?? (await _client.GetQueueUrlAsync(name, cancellationToken)).QueueUrl;
                await _client.DeleteQueueAsync(url, cancellationToken);
            }
            catch (Exception e) when (SqsErrors.IsMissingQueue(e))
            {
                // Already gone: deleting the group finishes the job.
            }

            await _payloads.DeleteGroupAsync(groupId, cancellationToken);
        });

        await Records.Database.WriteAsync(context =>
        {
            var forget = context.Command("DELETE FROM sqs_queues WHERE group_id = @group;");
            forget.Add("@group", groupId);
            return forget.ExecuteNonQuery();
        }, CancellationToken.None);
        _queues.TryRemove(groupId, out _);
    }

    /// <summary>
    /// Re-creates any group's missing queue and sets each queue's visibility timeout from its group; wakes groups
    /// whose queue holds messages (including any sent by a node that died before recording them) or whose records
    /// say so. A group SQS cannot answer for is logged and left to on-demand creation; an outage fails the whole pass,
    /// so the node is not ready until SQS answers.
    /// </summary>
    public async Task<IReadOnlyList<string>> RecoverAsync(IReadOnlyCollection<GroupSettings> groups, CancellationToken cancellationToken)
    {
        var waiting = new ConcurrentBag<string>(await Records.GroupsWithPendingAsync(cancellationToken));
        QueueUnavailableException? outage = null;
        await Parallel.ForEachAsync(groups, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (group, ct) =>
        {
            try
            {
                if (await ReadBacklogAsync(group, ct))
                {
                    waiting.Add(group.Id);
                }
            }
            catch (QueueUnavailableException e)
            {
                outage = e;
            }
            catch (Exception e) when (SqsErrors.IsOutage(e))
            {
                outage = new QueueUnavailableException($"SQS is unavailable: could not read the queue of group {group.Id}.", e);
            }
            catch (Exception e) when (SqsErrors.IsSqsFailure(e))
            {
                Log.RecoverFailed(_logger, group.Id, e);
            }
        });

        return outage is null ? [.. waiting.Distinct(StringComparer.Ordinal)] : throw outage;
    }

    /// <summary>
    /// One group's part of recovery: true when its queue holds messages. A known queue costs one attribute read (its
    /// backlog and visibility timeout); only a missing queue, or one whose timeout no longer fits its group, costs more.
    /// </summary>
    private async Task<bool> ReadBacklogAsync(GroupSettings group, CancellationToken cancellationToken)
    {
        var visibility = VisibilityFor(group.HandlerTimeout);
        Dictionary<string, string>? attributes = null;
        if (_queues.TryGetValue(group.Id, out var known))
        {
            try
            {
                attributes = (await _client.GetQueueAttributesAsync(known.Url, RecoveryAttributes, cancellationToken)).Attributes ?? [];
            }
            catch (Exception e) when (SqsErrors.IsMissingQueue(e))
            {
                // Deleted behind the node's back: created again below.
                _queues.TryRemove(group.Id, out _);
            }
        }

        if (attributes is not null && attributes.TryGetValue("VisibilityTimeout", out var seconds) && seconds == Seconds(visibility))
        {
            _queues[group.Id] = known! with { Visibility = visibility };
        }
        else
        {
            await EnsureQueueAsync(group.Id, visibility, cancellationToken);
            attributes ??= (await _client.GetQueueAttributesAsync(_queues[group.Id].Url, BacklogAttributes, cancellationToken)).Attributes ?? [];
        }

        return BacklogAttributes.Any(a => attributes.TryGetValue(a, out var n) && n != "0");
    }

    public async Task<EnqueueResult> EnqueueAsync(NewMessage message, CancellationToken cancellationToken)
    {
        var createdAt = _time.GetUtcNow();
        var reserved = await Records.InsertAsync(message, MessageRecords.StateAccepting, createdAt - AcceptTimeout, cancellationToken);
        if (reserved.Outcome != EnqueueOutcome.Accepted)
        {
            return reserved;
        }

        // A delayed message carries its due time; a delay beyond one send's MaxDelay is covered in hops (ReadAsync).
        var notBefore = message.NotBefore > createdAt ? message.NotBefore : null;
        var delay = notBefore is { } due ? Clamp(due - createdAt, TimeSpan.Zero, _options.MaxDelay) : TimeSpan.Zero;
        var offloaded = false;
        try
        {
            var outgoing = SqsEnvelope.Encode(message.Id, createdAt, message.ContentType, message.Body, 0, offloaded: false, delay, notBefore, message.WantsResult, traceParent: message.TraceParent);
            if (outgoing.Size() > _options.MaxMessageBytes)
            {
                await _payloads.PutAsync(message.GroupId, message.Id, message.Body, cancellationToken);
                offloaded = true;
                outgoing = SqsEnvelope.Encode(message.Id, createdAt, message.ContentType, [], 0, offloaded: true, delay, notBefore, message.WantsResult, traceParent: message.TraceParent);
            }

            await SendAsync(message.GroupId, outgoing);
        }
        catch (Exception e) when (e is QueueUnavailableException or OperationCanceledException || SqsErrors.IsSqsFailure(e))
        {
            // Nothing was acknowledged: take the reservation back so the sender's retry is new, not a duplicate.
            await Records.AbandonAsync(message.Id, message.GroupId, CancellationToken.None);
            if (offloaded)
            {
                await _payloads.DeleteAsync(message.GroupId, message.Id, CancellationToken.None);
            }

            if (SqsErrors.IsMissingQueue(e))
            {
                return new EnqueueResult(EnqueueOutcome.GroupNotFound, message.Id);
            }

            throw e as QueueUnavailableException ?? new QueueUnavailableException($"SQS did not accept the message for group {message.GroupId}: {e.Message}", e);
        }

        await Records.ConfirmAsync(message.Id, CancellationToken.None);
        return reserved;
    }

    public async Task<int> PurgeQueueAsync(string groupId, CancellationToken cancellationToken)
    {
        if (Known(groupId) is { } queue)
        {
            try
            {
                await _client.PurgeQueueAsync(queue.Url, cancellationToken);
            }
            catch (AmazonSQSException e) when (e is PurgeQueueInProgressException || (e.ErrorCode ?? "").Contains("PurgeQueueInProgress", StringComparison.Ordinal))
            {
                throw new QueueUnavailableException($"SQS allows one purge of group {groupId}'s queue every 60 seconds; the last one is still under way.", e);
            }
            catch (Exception e) when (SqsErrors.IsSqsFailure(e) && !SqsErrors.IsMissingQueue(e))
            {
                throw new QueueUnavailableException($"SQS did not purge the queue of group {groupId}: {e.Message}", e);
            }
        }

        // SQS took its copies, in flight or not; the records follow. A call still running finds no record when it ends
        // and writes its outcome anew (RecordOutcomeAsync), so its delivery or dead letter still shows.
        return await Records.PurgeQueuedAsync(groupId, leasedToo: true, _payloads, cancellationToken);
    }

    public Task<int> PurgeDeadLettersAsync(string? groupId, DeadLetterSelection selection, CancellationToken cancellationToken) =>
        Records.PurgeDeadAsync(groupId, selection, _payloads, cancellationToken);

    public int LeaseLimit => MaxReceive;

    public async Task<LeaseBatch> LeaseAsync(string groupId, int max, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        if (Known(groupId) is not { } queue)
        {
            return new LeaseBatch([], null);
        }

        List<Message> received;
        try
        {
            var response = await _client.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = queue.Url,
                MaxNumberOfMessages = Math.Clamp(max, 1, MaxReceive),
                WaitTimeSeconds = WholeSeconds(_options.ReceiveWait),
                VisibilityTimeout = WholeSeconds(leaseDuration),
                MessageSystemAttributeNames = [ReceiveCountAttribute],
                MessageAttributeNames = ["All"],
            }, cancellationToken);

            // The SDK leaves a list it did not receive null: an empty receive has no messages at all.
            received = response.Messages ?? [];
        }
        catch (Exception e) when (SqsErrors.IsMissingQueue(e))
        {
            // Deleted with its group, or by hand: the start-up recovery or the next definition re-creates it.
            return new LeaseBatch([], null);
        }

        var leased = new List<LeasedMessage>(received.Count);
        var records = Records.ReadSteps([.. received.Select(m => m.MessageAttributes?.GetValueOrDefault(SqsEnvelope.IdAttribute)?.StringValue).OfType<string>()]);
        foreach (var message in received)
        {
            if (await ReadAsync(groupId, message, records, cancellationToken) is { } readable)
            {
                leased.Add(readable);
            }
        }

        var now = _time.GetUtcNow();
        if (received.Count > 0)
        {
            // SQS may hand out fewer than it has: look again at once while it still hands some out.
            _emptyReceives.TryRemove(groupId, out _);
            return new LeaseBatch(leased, now);
        }

        // Nothing visible. If the records say messages are queued, they are hidden: in flight here, leased by a call
        // whose answer was lost, or waiting out a backoff. SQS does not say until when, so look again after a pause
        // that doubles while the queue stays empty (1 s up to 30 s), or at the earliest retry time if that is later.
        // With nothing queued the group is idle, and its actor may retire.
        if (Records.EarliestQueuedAt(groupId) is not { } due)
        {
            _emptyReceives.TryRemove(groupId, out _);
            return new LeaseBatch([], null);
        }

        var empties = _emptyReceives.AddOrUpdate(groupId, 1, (_, n) => Math.Min(n + 1, 6));
        var poll = now + TimeSpan.FromSeconds(Math.Min(MaxHiddenPoll.TotalSeconds, Math.Pow(2, empties - 1)));
        return new LeaseBatch([], due > poll ? due : poll);
    }

    /// <summary>
    /// The received message as the actor sees it; null when it went to the dead letters (it cannot be processed), on to
    /// its next hop (a delayed message not due yet), or away as a copy left behind its record's step.
    /// </summary>
    private async Task<LeasedMessage?> ReadAsync(string groupId, Message message, Dictionary<string, RecordedStep> records, CancellationToken cancellationToken)
    {
        var attempt = ReceiveCount(message);
        if (!SqsEnvelope.TryDecode(message, out var decoded))
        {
            var foreign = new LeasedMessage(message.MessageId, groupId, message.ReceiptHandle, attempt, null, System.Text.Encoding.UTF8.GetBytes(message.Body ?? ""), _time.GetUtcNow());
            await DeadLetterAsync(foreign, "not a ClusterQueue message (no cq-id/cq-created attributes)", cancellationToken);
            return null;
        }

        // The received copy goes without an outcome: the message lives on in another copy, or in none when it is done.
        Task<bool> DropReceivedAsync() =>
            DeleteAsync(new LeasedMessage(decoded.Id, groupId, message.ReceiptHandle, attempt, decoded.ContentType, [], decoded.CreatedAt), cancellationToken);

        var now = _time.GetUtcNow();
        if (decoded.NotBefore is { } due && due > now)
        {
            // A delayed message one send could not hold back long enough: the next hop, with the time left. This
            // receive is not an attempt, and the payload (if offloaded) stays where it is.
            var hop = SqsEnvelope.Encode(decoded.Id, decoded.CreatedAt, decoded.ContentType, decoded.Body ?? [], decoded.SpentAttempts + attempt - 1, decoded.Body is null, Clamp(due - now, TimeSpan.Zero, _options.MaxDelay), due, decoded.WantsResult, decoded.Step, decoded.Cursor, decoded.TraceParent);
            await Unavailable("delay message " + decoded.Id, () => SendAsync(groupId, hop));
            await DropReceivedAsync();
            return null;
        }

        // A copy behind its record's step is left over from a continuation that advanced the record and then stopped
        // (a crash before the next step's send or before this copy's delete). It is never called again. If the chain is
        // still queued and the record does not know its current step was sent, this copy sends it: again, perhaps, when
        // the crash fell between that send and its mark, and then the two copies converge at their next advance.
        if (records.TryGetValue(decoded.Id, out var record) && record.Step > decoded.Step)
        {
            if (record is { Queued: true, Sent: false })
            {
                var current = SqsEnvelope.Encode(decoded.Id, decoded.CreatedAt, decoded.ContentType, decoded.Body ?? [], 0, decoded.Body is null, wantsResult: decoded.WantsResult, step: record.Step, cursor: record.Cursor, traceParent: decoded.TraceParent);
                await Unavailable("continue message " + decoded.Id, () => SendAsync(groupId, current));
                await Records.MarkStepSentAsync(decoded.Id, record.Step, CancellationToken.None);
            }

            await DropReceivedAsync();
            return null;
        }

        var body = decoded.Body ?? await _payloads.GetAsync(groupId, decoded.Id, cancellationToken);
        var leased = new LeasedMessage(decoded.Id, groupId, message.ReceiptHandle, decoded.SpentAttempts + attempt, decoded.ContentType, body ?? [], decoded.CreatedAt)
        {
            Offloaded = decoded.Body is null,
            WantsResult = decoded.WantsResult,
            Step = decoded.Step,
            Cursor = decoded.Cursor,
            TraceParent = decoded.TraceParent,

            // The run of throttles lives in the record, not in the copy: a failed attempt's copy stays in SQS (only its
            // visibility changes) and could not be told that the run ended.
            Throttles = records.TryGetValue(decoded.Id, out var onRecord) && onRecord.Step == decoded.Step ? onRecord.Throttles : 0,
        };

        if (body is null)
        {
            await DeadLetterAsync(leased, "the message's body is missing from the payload store", cancellationToken);
            return null;
        }

        return leased;
    }

    public Task<bool> ExtendAsync(LeasedMessage message, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        ChangeVisibilityAsync(message, leaseDuration, cancellationToken);

    public Task<bool> CompleteAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        CompleteAsync(message, null, cancellationToken);

    public async Task<bool> CompleteAsync(LeasedMessage message, DeliveryResult? result, CancellationToken cancellationToken)
    {
        // The record first, as for a dead letter: a crash before the SQS delete only means the message is received and
        // delivered again, while the other order would leave a record saying "queued" for a message SQS no longer has.
        var recorded = await Records.RecordOutcomeAsync(message, MessageRecords.StateDelivered, null, null, offloaded: false, CancellationToken.None, result);
        var deleted = await DeleteAsync(message, cancellationToken);
        if (recorded && deleted && message.Offloaded)
        {
            await _payloads.DeleteAsync(message.GroupId, message.Id, CancellationToken.None);
        }

        return recorded && deleted;
    }

    public async Task<bool> ContinueAsync(LeasedMessage message, string cursor, int status, CancellationToken cancellationToken)
    {
        // The record first: it decides which copy carries the chain on. A crash after it and before the send leaves the
        // received copy behind its record, and its next receive sends the step (ReadAsync). The mark after the send
        // tells that left-over copy the step is on its way: only a crash between the send and the mark leaves two copies
        // of one step, and they converge at their next advance.
        var advanced = await Records.AdvanceStepAsync(message, cursor, status, CancellationToken.None);
        if (advanced)
        {
            var next = SqsEnvelope.Encode(message.Id, message.CreatedAt, message.ContentType, message.Offloaded ? [] : message.Body, 0, message.Offloaded, wantsResult: message.WantsResult, step: message.Step + 1, cursor: cursor, traceParent: message.TraceParent);
            await Unavailable("continue message " + message.Id, () => SendAsync(message.GroupId, next));
            await Records.MarkStepSentAsync(message.Id, message.Step + 1, CancellationToken.None);
        }

        return await DeleteAsync(message, cancellationToken) && advanced;
    }

    public async Task<bool> RetryAsync(LeasedMessage message, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken, AttemptReport? report = null)
    {
        // A throttle that does not count must give its receive back, and SQS's receive count only grows: a new copy
        // carries the attempts spent. One that counts (a failure, a throttle past the bound) keeps the received copy.
        var delay = visibleAt - _time.GetUtcNow();
        var returned = kind == RetryKind.Throttled
            ? await SendAgainAsync(message, delay, cancellationToken)
            : await ChangeVisibilityAsync(message, delay, cancellationToken);
        if (!returned)
        {
            return false;
        }

        await Records.RecordAttemptAsync(message, kind == RetryKind.Throttled ? message.Attempt - 1 : message.Attempt, visibleAt, error, kind, CancellationToken.None, report);
        return true;
    }

    public Task<bool> ReleaseAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        SendAgainAsync(message, TimeSpan.Zero, cancellationToken);

    public async Task<bool> DeadLetterAsync(LeasedMessage message, string error, CancellationToken cancellationToken, AttemptReport? report = null)
    {
        // The store first: once the dead letter is durable, losing the SQS delete only means it is received and dead-lettered again.
        var recorded = await Records.RecordOutcomeAsync(message, MessageRecords.StateDead, error, message.Offloaded ? null : message.Body, message.Offloaded, CancellationToken.None, attempt: report);
        await DeleteAsync(message, cancellationToken);
        return recorded;
    }

    public async Task<int> RedriveAsync(string groupId, DeadLetterSelection selection, CancellationToken cancellationToken)
    {
        const int Chunk = 100;
        var total = 0;
        while (true)
        {
            var dead = Records.ReadDeadBodies(groupId, selection, Chunk);
            if (dead.Count == 0)
            {
                return total;
            }

            var started = (await Records.BeginRedriveAsync([.. dead.Select(d => d.Id)], CancellationToken.None)).ToHashSet(StringComparer.Ordinal);
            var outcomes = await Task.WhenAll(dead.Where(d => started.Contains(d.Id)).Select(async letter =>
            {
                try
                {
                    // A continued message goes back at its step, with its cursor (read with its body): a copy behind its
                    // record would be taken for a left-over.
                    await SendAsync(groupId, SqsEnvelope.Encode(letter.Id, letter.CreatedAt, letter.ContentType, letter.Body, 0, letter.Offloaded, wantsResult: letter.WantsResult, step: letter.Step, cursor: letter.Cursor, traceParent: letter.TraceParent));
                    return (letter.Id, Sent: true);
                }
                catch (Exception e) when (e is QueueUnavailableException or OperationCanceledException || SqsErrors.IsSqsFailure(e))
                {
                    Log.RedriveSendFailed(_logger, letter.Id, groupId, e);
                    return (letter.Id, Sent: false);
                }
            }));

            string[] sent = [.. outcomes.Where(o => o.Sent).Select(o => o.Id)];
            string[] refused = [.. outcomes.Where(o => !o.Sent).Select(o => o.Id)];
            total += await Records.FinishRedriveAsync(sent, refused, CancellationToken.None);
            if (refused.Length > 0)
            {
                throw new QueueUnavailableException($"SQS did not accept {refused.Length} of the dead letters of group {groupId}; {total} were redriven.");
            }
        }
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, CancellationToken cancellationToken) =>
        Records.PurgeExpiredAsync(deliveredBefore, _time.GetUtcNow() - AcceptTimeout, cancellationToken);

    /// <summary>
    /// How long a reservation may wait for SQS before it is taken to be dead: longer than the SDK's every
    /// attempt and backoff, so a live request is never overtaken by a retry of the same delivery.
    /// </summary>
    private TimeSpan AcceptTimeout => (_options.RequestTimeout + _options.ReceiveWait + SdkMaxBackoff) * _options.MaxAttempts + TimeSpan.FromSeconds(30);

    /// <summary>Sends to the group's queue; re-creates the queue once if it went missing while the group still exists.</summary>
    private async Task SendAsync(string groupId, SqsOutgoingMessage message)
    {
        if (Known(groupId) is not { } queue)
        {
            await EnsureQueueAsync(groupId, VisibilityFor(DefaultHandlerTimeout), CancellationToken.None);
            queue = _queues[groupId];
        }

        try
        {
            await _sender.SendAsync(queue.Url, message, CancellationToken.None);
        }
        catch (Exception e) when (SqsErrors.IsMissingQueue(e) && _queues.ContainsKey(groupId))
        {
            Log.QueueRecreated(_logger, queue.Name, groupId);
            _queues.TryRemove(groupId, out _);
            await EnsureQueueAsync(groupId, queue.Visibility ?? VisibilityFor(DefaultHandlerTimeout), CancellationToken.None);
            await _sender.SendAsync(_queues[groupId].Url, message, CancellationToken.None);
        }
    }

    /// <summary>Returns a message to its queue without counting the attempt: a new copy carries the attempts spent, then the received copy goes.</summary>
    private async Task<bool> SendAgainAsync(LeasedMessage message, TimeSpan delay, CancellationToken cancellationToken)
    {
        var copy = SqsEnvelope.Encode(message.Id, message.CreatedAt, message.ContentType, message.Offloaded ? [] : message.Body, message.Attempt - 1, message.Offloaded, Clamp(delay, TimeSpan.Zero, _options.MaxDelay), wantsResult: message.WantsResult, step: message.Step, cursor: message.Cursor, traceParent: message.TraceParent);
        await Unavailable("return message " + message.Id, () => SendAsync(message.GroupId, copy));
        return await DeleteAsync(message, cancellationToken);
    }

    /// <summary>False when SQS no longer honours the receipt (the lease ran out, the message or its queue is gone).</summary>
    private async Task<bool> ChangeVisibilityAsync(LeasedMessage message, TimeSpan visibility, CancellationToken cancellationToken)
    {
        if (Known(message.GroupId) is not { } queue)
        {
            return false;
        }

        try
        {
            await _client.ChangeMessageVisibilityAsync(queue.Url, message.Receipt, WholeSeconds(Clamp(visibility, TimeSpan.Zero, MaxVisibility)), cancellationToken);
            return true;
        }
        catch (Exception e) when (SqsErrors.Classify(e) is SqsErrorKind.InvalidRequest or SqsErrorKind.QueueDoesNotExist)
        {
            return false;
        }
    }

    private async Task<bool> DeleteAsync(LeasedMessage message, CancellationToken cancellationToken)
    {
        if (Known(message.GroupId) is not { } queue)
        {
            return false;
        }

        try
        {
            await _client.DeleteMessageAsync(queue.Url, message.Receipt, cancellationToken);
            return true;
        }
        catch (Exception e) when (SqsErrors.Classify(e) is SqsErrorKind.InvalidRequest or SqsErrorKind.QueueDoesNotExist)
        {
            return false;
        }
    }

    private async Task RememberQueueAsync(string groupId, string name, string url) =>
        await Records.Database.WriteAsync(context =>
        {
            // The unique queue name refuses a second group whose id hashes to the same name: that group's PUT fails, nothing is shared.
            var remember = context.Command("""
                INSERT INTO sqs_queues (group_id, queue_name, queue_url) VALUES (@group, @name, @url)
                ON CONFLICT (group_id) DO UPDATE SET queue_name = excluded.queue_name, queue_url = excluded.queue_url;
                """);
            remember.Add("@group", groupId);
            remember.Add("@name", name);
            remember.Add("@url", url);
            return remember.ExecuteNonQuery();
        }, CancellationToken.None);

    /// <summary>
    /// The group's queue: from this node's map, else from the store, where another node of a cluster recorded it when
    /// the group was defined there (its visibility timeout is that node's business, so it is not set again here).
    /// </summary>
    private GroupQueue? Known(string groupId)
    {
        if (_queues.TryGetValue(groupId, out var queue))
        {
            return queue;
        }

        using var connection = Records.Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT queue_name, queue_url FROM sqs_queues WHERE group_id = @group;";
        command.Add("@group", groupId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? _queues.GetOrAdd(groupId, new GroupQueue(reader.GetString(0), reader.GetString(1), null)) : null;
    }

    private List<(string GroupId, string Name, string Url)> LoadQueueMap()
    {
        using var connection = Records.Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_id, queue_name, queue_url FROM sqs_queues;";
        var map = new List<(string, string, string)>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            map.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }

        return map;
    }

    /// <summary>Runs an SQS call whose failure through every retry (an outage, throttling) the caller answers with 503.</summary>
    private static async Task Unavailable(string what, Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (AmazonSQSException e) when (SqsErrors.IsOutage(e))
        {
            throw new QueueUnavailableException($"SQS is unavailable: could not {what} ({(string.IsNullOrEmpty(e.ErrorCode) ? $"HTTP {(int)e.StatusCode}" : e.ErrorCode)}).", e);
        }
        catch (Exception e) when (SqsErrors.IsOutage(e))
        {
            throw new QueueUnavailableException($"SQS is unreachable: could not {what}.", e);
        }
    }

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

    private static string Seconds(TimeSpan value) => WholeSeconds(value).ToString(CultureInfo.InvariantCulture);

    /// <summary>SQS counts whole seconds; rounding up never shows a message sooner than asked.</summary>
    private static int WholeSeconds(TimeSpan value) => (int)Math.Ceiling(value.TotalSeconds);

    /// <summary>How many times SQS has handed the message out, this time included (1 if it did not say).</summary>
    private static int ReceiveCount(Message message) =>
        message.Attributes?.GetValueOrDefault(ReceiveCountAttribute) is { } count
        && int.TryParse(count, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : 1;

    /// <summary>A group's queue; Visibility is null until this node set it (the map was loaded from the store).</summary>
    private sealed record GroupQueue(string Name, string Url, TimeSpan? Visibility);
}
