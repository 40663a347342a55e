namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>One entry of a SendMessageBatch call; <paramref name="Id"/> is unique within the batch and ties the result back to it.</summary>
public sealed record SqsSendEntry(string Id, SqsOutgoingMessage Message);
