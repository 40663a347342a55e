namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>A message to send: its body, how long SQS keeps it hidden first, and its attributes.</summary>
public sealed record SqsOutgoingMessage(
    string Body,
    TimeSpan Delay = default,
    IReadOnlyDictionary<string, SqsMessageAttribute>? Attributes = null);
