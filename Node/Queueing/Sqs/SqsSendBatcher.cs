using System.Globalization;
using System.Net;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// Coalesces concurrent sends to one SQS queue into SendMessageBatch calls, the way a database's group commit
/// coalesces transactions: no timer and no added latency. A send that finds a free slot (fewer than
/// <c>maxBatchesInFlightPerQueue</c> batches in flight for its queue) leaves at once; one that finds every slot busy
/// waits, and the next batch to finish takes it along with everything else waiting, up to SQS's limits. So batches
/// grow exactly when the queue is busy, and an idle queue sends each message the moment it arrives.
/// <code>
///   SendAsync ──▶ waiting ──(a slot is free, or a batch finishes)──▶ in a batch ──▶ accepted (message id)
///                    │                                                    └────▶ refused (AmazonSQSException)
///                    └──(caller cancels)──▶ removed, OperationCanceledException
/// </code>
/// A queue's state lives only while something waits or is in flight: thousands of groups leave nothing behind when
/// they go quiet, and no task runs for a queue between its batches.
/// </summary>
public sealed class SqsSendBatcher
{
    /// <summary>SQS refuses a SendMessageBatch with more entries than this.</summary>
    private const int MaxEntriesPerBatch = 10;

    private readonly IAmazonSQS _client;
    private readonly int _maxBatchBytes;
    private readonly int _maxBatchesInFlightPerQueue;

    // One lock for the map and every queue in it. Its sections are a few list operations, tiny next to the HTTP call
    // each batch makes, and a single lock makes dropping an idle queue race-free: no sender can be holding a queue
    // that is being removed, so no retire-and-retry protocol is needed.
    private readonly Lock _lock = new();
    private readonly Dictionary<string, QueueState> _queues = new(StringComparer.Ordinal);

    /// <param name="maxBatchBytes">
    /// SendMessageBatch's limit on the sum of its messages' sizes (262,144 bytes unless the account's limit is higher).
    /// </param>
    /// <param name="maxBatchesInFlightPerQueue">
    /// How many calls may be on the wire for one queue at once: more lowers latency under load, fewer makes bigger,
    /// cheaper batches.
    /// </param>
    public SqsSendBatcher(IAmazonSQS client, int maxBatchBytes = 262_144, int maxBatchesInFlightPerQueue = 4)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchesInFlightPerQueue, 1);
        _client = client;
        _maxBatchBytes = maxBatchBytes;
        _maxBatchesInFlightPerQueue = maxBatchesInFlightPerQueue;
    }

    /// <summary>How many queues have state right now; zero once every send has completed.</summary>
    internal int QueuesTracked
    {
        get
        {
            lock (_lock)
            {
                return _queues.Count;
            }
        }
    }

    /// <summary>
    /// Completes when SQS accepted the message (returns the SQS message id); throws the AWS SDK's exception when SQS
    /// refused this entry (an <see cref="AmazonSQSException"/> with the entry's code) or the whole call failed.
    /// Cancelling <paramref name="cancellationToken"/> withdraws the message only while it still waits for a batch;
    /// once it is in one, the caller gets the real outcome, because SQS may already have accepted it.
    /// </summary>
    public Task<string> SendAsync(string queueUrl, SqsOutgoingMessage message, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(queueUrl);
        ArgumentNullException.ThrowIfNull(message);

        // Checked here because it would fail the whole batch, failing other callers' messages.
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Delay, TimeSpan.Zero, nameof(message));

        var pending = new Pending(message, message.Size());

        // Registered before the message is queued, so no batch can take it while the registration is still unset;
        // a token cancelled in between is caught by the check under the lock below.
        pending.Cancellation = cancellationToken.Register(() => Cancel(pending, cancellationToken));

        QueueState queue;
        List<Pending>? batch = null;
        lock (_lock)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                pending.Completion.TrySetCanceled(cancellationToken);
                return pending.Completion.Task;
            }

            if (!_queues.TryGetValue(queueUrl, out var existing))
            {
                existing = new QueueState(queueUrl);
                _queues.Add(queueUrl, existing);
            }

            queue = existing;
            pending.Queue = queue;
            pending.Node = queue.Waiting.AddLast(pending);
            if (queue.InFlight < _maxBatchesInFlightPerQueue)
            {
                queue.InFlight++;
                batch = TakeBatch(queue);
            }
        }

        if (batch is not null)
        {
            // "Unsafe" only means without this caller's ExecutionContext: the loop outlives the caller and carries
            // other callers' messages, so it must not run under this request's trace or log scopes. It never throws;
            // every outcome goes to the callers' tasks.
            ThreadPool.UnsafeQueueUserWorkItem(_ => _ = RunBatchesAsync(queue, batch), null);
        }

        return pending.Completion.Task;
    }

    /// <summary>
    /// Sends <paramref name="batch"/>, then keeps the slot for whatever waited meanwhile, until nothing waits. The
    /// loop ends with the queue's last batch, so it is not a background task: it lives only while there is work.
    /// </summary>
    private async Task RunBatchesAsync(QueueState queue, List<Pending> batch)
    {
        while (true)
        {
            var (result, failure) = await SendBatchAsync(queue.Url, batch);

            List<Pending>? next = null;
            lock (_lock)
            {
                if (queue.Waiting.Count > 0)
                {
                    next = TakeBatch(queue);
                }
                else
                {
                    queue.InFlight--;
                    RemoveIfIdle(queue);
                }
            }

            // Callers hear their outcome only after the bookkeeping above, so a caller that sees its send complete
            // never finds the batcher still counting it.
            Complete(batch, result, failure);
            if (next is null)
            {
                return;
            }

            batch = next;
        }
    }

    private async Task<(SendMessageBatchResponse? Result, Exception? Failure)> SendBatchAsync(string queueUrl, List<Pending> batch)
    {
        try
        {
            // A lone message goes this way too, not through SendMessage: one call and one answer shape, so a message
            // gets the same verdict (say, a refused entry rather than a failed call) whether it travelled alone or not.
            // Entry ids are positions in the batch: unique within it, and all SQS needs to tie results back.
            var request = new SendMessageBatchRequest
            {
                QueueUrl = queueUrl,
                Entries = [.. batch.Select((p, i) => p.Message.ToBatchEntry(i.ToString(CultureInfo.InvariantCulture)))],
            };

            // No caller's token: the call carries other callers' messages, and once it is on the wire SQS may accept
            // them whoever stops waiting. The SDK's per-attempt timeout and bounded retries end it.
            var result = await _client.SendMessageBatchAsync(request, CancellationToken.None);
            return (result, null);
        }
        catch (Exception e)
        {
            // The whole call failed (the SDK's exception, or a bug): every caller in it hears why.
            return (null, e);
        }
    }

    private static void Complete(List<Pending> batch, SendMessageBatchResponse? result, Exception? failure)
    {
        if (result is null)
        {
            foreach (var pending in batch)
            {
                pending.Completion.TrySetException(failure!);
            }

            return;
        }

        var accepted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var sent in result.Successful ?? [])
        {
            accepted[sent.Id] = sent.MessageId;
        }

        var refused = new Dictionary<string, BatchResultErrorEntry>(StringComparer.Ordinal);
        foreach (var failed in result.Failed ?? [])
        {
            refused[failed.Id] = failed;
        }

        for (var i = 0; i < batch.Count; i++)
        {
            var id = i.ToString(CultureInfo.InvariantCulture);
            var completion = batch[i].Completion;
            if (accepted.TryGetValue(id, out var messageId))
            {
                completion.TrySetResult(messageId);
            }
            else if (refused.TryGetValue(id, out var entry))
            {
                completion.TrySetException(EntryFailure(entry, result.ResponseMetadata?.RequestId));
            }
            else
            {
                // A malformed answer must still end the caller's wait; whether SQS kept the message is unknown.
                completion.TrySetException(new AmazonSQSException(
                    $"SendMessageBatch answered without a result for entry {id}; the message may or may not have been accepted.",
                    ErrorType.Unknown,
                    "MissingBatchEntry",
                    result.ResponseMetadata?.RequestId,
                    HttpStatusCode.OK));
            }
        }
    }

    /// <summary>
    /// An entry SQS refused inside an accepted call, as the SDK's own exception type. The HTTP answer was 200, so that
    /// is the status reported; the error type says whose fault it was: the sender's (retrying cannot help) or SQS's.
    /// </summary>
    private static AmazonSQSException EntryFailure(BatchResultErrorEntry entry, string? requestId)
    {
        var code = string.IsNullOrEmpty(entry.Code) ? "BatchEntryFailed" : entry.Code;
        var fault = entry.SenderFault == true ? ErrorType.Sender : ErrorType.Receiver;
        return new AmazonSQSException(entry.Message ?? code, fault, code, requestId, HttpStatusCode.OK);
    }

    /// <summary>Takes waiting messages in arrival order while they fit in one call. Called under the lock.</summary>
    private List<Pending> TakeBatch(QueueState queue)
    {
        var batch = new List<Pending>(Math.Min(queue.Waiting.Count, MaxEntriesPerBatch));
        long bytes = 0;
        while (batch.Count < MaxEntriesPerBatch && queue.Waiting.First is { } first)
        {
            var next = first.Value;

            // The first message always goes, even one bigger than the limit: SQS gives it its real verdict.
            // Stopping at the first that doesn't fit, rather than skipping ahead, keeps arrival order.
            if (batch.Count > 0 && bytes + next.Bytes > _maxBatchBytes)
            {
                break;
            }

            queue.Waiting.RemoveFirst();
            next.Node = null;

            // Cancellation no longer applies: the message may be accepted now. Unregister doesn't wait for a running
            // callback (which would need this lock); that callback finds Node null and does nothing.
            next.Cancellation.Unregister();
            batch.Add(next);
            bytes += next.Bytes;
        }

        return batch;
    }

    private void Cancel(Pending pending, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            // Null Node: not queued yet (SendAsync sees the token itself) or already in a batch (its outcome stands).
            if (pending.Node is null || pending.Queue is null)
            {
                return;
            }

            pending.Queue.Waiting.Remove(pending.Node);
            pending.Node = null;
            RemoveIfIdle(pending.Queue);
        }

        pending.Completion.TrySetCanceled(cancellationToken);
    }

    /// <summary>Called under the lock whenever a queue may have gone idle.</summary>
    private void RemoveIfIdle(QueueState queue)
    {
        if (queue.InFlight == 0 && queue.Waiting.Count == 0)
        {
            _queues.Remove(queue.Url);
        }
    }

    /// <summary>One queue's sends: those waiting for a slot, and how many batches are on the wire. Guarded by the lock.</summary>
    private sealed class QueueState(string url)
    {
        public string Url { get; } = url;

        public LinkedList<Pending> Waiting { get; } = new();

        public int InFlight { get; set; }
    }

    /// <summary>One caller's send. Node is set while it waits, so a cancellation can remove it in O(1).</summary>
    private sealed class Pending(SqsOutgoingMessage message, int bytes)
    {
        public SqsOutgoingMessage Message { get; } = message;

        public int Bytes { get; } = bytes;

        // Continuations run on the thread pool, not inline on the batch loop that completes many callers at once.
        public TaskCompletionSource<string> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationTokenRegistration Cancellation { get; set; }

        public QueueState? Queue { get; set; }

        public LinkedListNode<Pending>? Node { get; set; }
    }
}
