namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// The outcome of a batch call, entry by entry: a batch is not all-or-nothing in SQS, so partial failure is an
/// ordinary answer the caller acts on, not an exception.
/// </summary>
public sealed record SqsBatchResult<TSuccess>(IReadOnlyList<TSuccess> Successful, IReadOnlyList<SqsBatchFailure> Failed)
{
    public bool AllSucceeded => Failed.Count == 0;
}
