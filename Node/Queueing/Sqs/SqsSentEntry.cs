namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>A batch entry SQS accepted: the caller's entry id and the message id SQS gave it.</summary>
public sealed record SqsSentEntry(string Id, string MessageId);
