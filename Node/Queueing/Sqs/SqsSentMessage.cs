namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>A message SQS accepted: its id and SQS's MD5 of the body it stored.</summary>
public sealed record SqsSentMessage(string MessageId, string? Md5OfBody);
