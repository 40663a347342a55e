namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// How to receive: up to <see cref="MaxNumberOfMessages"/> (1–10), long-polling for <see cref="WaitTime"/> (0–20 s;
/// null uses the queue's own setting), hiding what arrives for <see cref="VisibilityTimeout"/> (null: the queue's),
/// with the system attributes (e.g. <c>ApproximateReceiveCount</c>, or <c>All</c>) and message attributes named.
/// </summary>
public sealed record SqsReceiveRequest
{
    public int MaxNumberOfMessages { get; init; } = 1;

    public TimeSpan? WaitTime { get; init; }

    public TimeSpan? VisibilityTimeout { get; init; }

    public IReadOnlyList<string> AttributeNames { get; init; } = [];

    public IReadOnlyList<string> MessageAttributeNames { get; init; } = [];
}
