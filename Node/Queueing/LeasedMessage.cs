namespace ClusterQueue.Node.Queueing;

/// <summary>
/// A message this node holds a lease on. Receipt fences every later change: once the lease expired and someone
/// else leased the message, changes made with the old receipt do nothing.
/// </summary>
public sealed record LeasedMessage(
    string Id,
    string GroupId,
    string Receipt,
    int Attempt,
    string? ContentType,
    byte[] Body,
    DateTimeOffset CreatedAt)
{
    /// <summary>The body came from the payload store (too large for SQS) and is deleted from there when the message is done.</summary>
    public bool Offloaded { get; init; }

    /// <summary>A sender waits for this message's result: the handler keeps the downstream's answer and the outcome is announced.</summary>
    public bool WantsResult { get; init; }

    /// <summary>The continuation step this call is (1-based), and the cursor the previous step returned.</summary>
    public int Step { get; init; } = 1;

    public string? Cursor { get; init; }

    /// <summary>Throttled attempts in a row on this step before this one (see <see cref="RetryKind"/>).</summary>
    public int Throttles { get; init; }

    /// <summary>The W3C trace context (traceparent) the message was ingested in, or null: what its delivery continues.</summary>
    public string? TraceParent { get; init; }
}
