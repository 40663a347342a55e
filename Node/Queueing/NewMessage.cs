namespace ClusterQueue.Node.Queueing;

/// <summary>
/// A message ingress wants made durable. A non-null key de-duplicates it against earlier messages of the group until
/// the key expires. A <see cref="NotBefore"/> in the future holds the message back until then (a delayed message).
/// </summary>
public sealed record NewMessage(
    string Id,
    string GroupId,
    string? ContentType,
    byte[] Body,
    string? DeduplicationKey,
    DateTimeOffset DeduplicationExpiresAt,
    DateTimeOffset? NotBefore = null,
    bool WantsResult = false)
{
    /// <summary>The W3C trace context (traceparent) it was ingested in, kept so its deliveries continue that trace.</summary>
    public string? TraceParent { get; init; }
}
