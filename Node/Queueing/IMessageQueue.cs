using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The per-group message queue: the SQL store's own table, or one SQS queue per group.
///
/// Message lifecycle:
/// <code>
///   Enqueue ──▶ pending ──Lease──▶ leased ──Complete──▶ delivered (status kept for the retention period)
///                  ▲                 │ ├──Retry(at)───▶ pending, visible at `at`
///                  │                 │ ├──Release─────▶ pending now, attempt not counted (shutdown)
///                  │                 │ └──DeadLetter──▶ dead ──Redrive──▶ pending
///                  └── lease expiry ─┘   (a crashed node's messages come back by themselves)
/// </code>
/// Every change to a leased message carries its receipt and does nothing (returns false) once the lease was lost.
/// (SQS fences less strictly: it may accept a stale receipt's change; see docs/design.md.)
/// Anything that fails because the queue's service is unreachable throws <see cref="QueueUnavailableException"/>.
/// </summary>
public interface IMessageQueue
{
    /// <summary>Readies the group's queue before its definition is stored: a no-op for the store queue, the group's SQS queue otherwise.</summary>
    Task PrepareGroupAsync(string groupId, TimeSpan handlerTimeout, CancellationToken cancellationToken);

    /// <summary>Removes the group's queue before its definition is deleted (the store deletes its own rows with the group).</summary>
    Task RemoveGroupAsync(string groupId, CancellationToken cancellationToken);

    /// <summary>At start: makes every group's queue whole again and returns the groups that have messages waiting.</summary>
    Task<IReadOnlyList<string>> RecoverAsync(IReadOnlyCollection<GroupSettings> groups, CancellationToken cancellationToken);

    /// <summary>Completes only when the message is durable.</summary>
    Task<EnqueueResult> EnqueueAsync(NewMessage message, CancellationToken cancellationToken);

    /// <summary>
    /// The most messages one <see cref="LeaseAsync"/> call can return, whatever it is asked for. An actor takes call
    /// slots before it leases, so asking for more than this would hold slots no lease can fill.
    /// </summary>
    int LeaseLimit { get; }

    /// <summary>Leases up to <paramref name="max"/> visible messages of one group, oldest visibility first.</summary>
    Task<LeaseBatch> LeaseAsync(string groupId, int max, TimeSpan leaseDuration, CancellationToken cancellationToken);

    Task<bool> ExtendAsync(LeasedMessage message, TimeSpan leaseDuration, CancellationToken cancellationToken);

    Task<bool> CompleteAsync(LeasedMessage message, CancellationToken cancellationToken);

    /// <summary>Completes the message, keeping what the downstream answered when a sender waits for it.</summary>
    Task<bool> CompleteAsync(LeasedMessage message, DeliveryResult? result, CancellationToken cancellationToken);

    /// <summary>
    /// Finishes the message's current step and queues its next, visible at once, with <paramref name="cursor"/> and
    /// attempts starting again; in one transaction on the SQL queue. False when the lease was lost.
    /// </summary>
    Task<bool> ContinueAsync(LeasedMessage message, string cursor, int status, CancellationToken cancellationToken);

    /// <summary>Returns the message for another attempt at <paramref name="visibleAt"/>; <paramref name="report"/> adds the attempt to its history.</summary>
    Task<bool> RetryAsync(LeasedMessage message, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken, AttemptReport? report = null);

    Task<bool> ReleaseAsync(LeasedMessage message, CancellationToken cancellationToken);

    Task<bool> DeadLetterAsync(LeasedMessage message, string error, CancellationToken cancellationToken, AttemptReport? report = null);

    /// <summary>Sends the group's selected dead letters back to the queue with their attempts reset; their history stays.</summary>
    Task<int> RedriveAsync(string groupId, DeadLetterSelection selection, CancellationToken cancellationToken);

    /// <summary>Deletes the group's selected dead letters (all groups' with a null group), with their payloads; returns how many went.</summary>
    Task<int> PurgeDeadLettersAsync(string? groupId, DeadLetterSelection selection, CancellationToken cancellationToken);

    Task<DeadLetterList> ListDeadLettersAsync(string groupId, string? after, int limit, CancellationToken cancellationToken);

    Task<MessageStatus?> GetStatusAsync(string messageId, CancellationToken cancellationToken);

    Task<QueueCounts?> GetCountsAsync(string groupId, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the group's queued messages (an operator's purge) and returns how many went. The store queue keeps the
    /// ones in a handler call right now, which finish as usual; SQS's purge takes those too.
    /// </summary>
    Task<int> PurgeQueueAsync(string groupId, CancellationToken cancellationToken);

    /// <summary>Pending messages per group and the oldest ready one, for metrics; groups with none pending are absent.</summary>
    Task<IReadOnlyDictionary<string, QueueDepth>> GetDepthsAsync(CancellationToken cancellationToken);

    /// <summary>Groups that have pending messages: whom to wake at start and after a missed wake-up.</summary>
    Task<IReadOnlyList<string>> GroupsWithPendingAsync(CancellationToken cancellationToken);

    /// <summary>Deletes expired dedup keys and delivered-message statuses older than the retention; returns how many rows went.</summary>
    Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, CancellationToken cancellationToken);
}
