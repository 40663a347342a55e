using ClusterQueue.Contracts;

namespace ClusterQueue.Node.Queueing;

/// <summary>What every queue answers from the store's message records, whoever holds the messages themselves.</summary>
public abstract class RecordedMessageQueue(MessageRecords records)
{
    protected MessageRecords Records { get; } = records;

    public Task<DeadLetterList> ListDeadLettersAsync(string groupId, string? after, int limit, CancellationToken cancellationToken) =>
        Records.ListDeadLettersAsync(groupId, after, limit, cancellationToken);

    public Task<MessageStatus?> GetStatusAsync(string messageId, CancellationToken cancellationToken) =>
        Records.GetStatusAsync(messageId, cancellationToken);

    public Task<QueueCounts?> GetCountsAsync(string groupId, CancellationToken cancellationToken) =>
        Records.GetCountsAsync(groupId, cancellationToken);

    public Task<IReadOnlyDictionary<string, QueueDepth>> GetDepthsAsync(CancellationToken cancellationToken) =>
        Records.GetDepthsAsync(cancellationToken);

    public Task<IReadOnlyList<string>> GroupsWithPendingAsync(CancellationToken cancellationToken) =>
        Records.GroupsWithPendingAsync(cancellationToken);
}
