namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>One entry of a ChangeMessageVisibilityBatch call: hide the received message for <paramref name="VisibilityTimeout"/> from now.</summary>
public sealed record SqsVisibilityEntry(string Id, string ReceiptHandle, TimeSpan VisibilityTimeout);
