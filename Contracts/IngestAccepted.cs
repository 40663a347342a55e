namespace ClusterQueue.Contracts;

/// <summary>The 202 answer of POST /hooks/{id}: the message is durable. duplicate is true when the sender's delivery id was already seen.</summary>
public sealed record IngestAccepted(string MessageId, bool Duplicate);
