namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>One entry of a DeleteMessageBatch call: an id unique within the batch and the receipt handle to delete.</summary>
public sealed record SqsReceiptEntry(string Id, string ReceiptHandle);
