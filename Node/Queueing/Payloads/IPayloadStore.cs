namespace ClusterQueue.Node.Queueing.Payloads;

/// <summary>
/// Where bodies too large for an SQS message are kept while the SQS message carries only a pointer to them: this
/// node's database, or an S3 bucket. Keyed by group and message id, so a removed group's payloads can go with it.
/// </summary>
public interface IPayloadStore
{
    /// <summary>Stores <paramref name="body"/>, replacing any earlier one for the same message. Durable on return.</summary>
    Task PutAsync(string groupId, string messageId, byte[] body, CancellationToken cancellationToken);

    /// <summary>The stored body; null when there is no such payload.</summary>
    Task<byte[]?> GetAsync(string groupId, string messageId, CancellationToken cancellationToken);

    /// <summary>Removes the payload. Idempotent: removing one that is not there succeeds.</summary>
    Task DeleteAsync(string groupId, string messageId, CancellationToken cancellationToken);

    /// <summary>Removes every payload of the group (the group was removed).</summary>
    Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken);
}
