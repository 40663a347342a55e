namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// A batch entry SQS refused while accepting the call. <paramref name="SenderFault"/> false means SQS's side failed
/// and the entry may succeed when sent again.
/// </summary>
public sealed record SqsBatchFailure(string Id, string Code, string? Message, bool SenderFault);
