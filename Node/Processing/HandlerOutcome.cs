namespace ClusterQueue.Node.Processing;

/// <summary>What a handler reports for one attempt. Outcomes are values; a handler throws only on bugs.</summary>
public abstract record HandlerOutcome
{
    private HandlerOutcome()
    {
    }

    /// <summary>Done: the message is deleted. <paramref name="Result"/> is the downstream's answer when a sender waits for it.</summary>
    public sealed record Delivered(Queueing.DeliveryResult? Result = null) : HandlerOutcome;

    /// <summary>
    /// The step is done and the job goes on: the message is queued again (same id, same group, same bucket) with the
    /// cursor, and its next call carries it. <paramref name="Status"/> is the downstream's HTTP status.
    /// </summary>
    public sealed record Continue(string Cursor, int Status) : HandlerOutcome;

    /// <summary>
    /// The attempt failed; it is retried after the group's backoff until maxAttempts, then dead-lettered.
    /// <paramref name="Status"/> is the downstream's HTTP status when it answered (null for a connection error or timeout).
    /// </summary>
    public sealed record Failed(string Error, int? Status = null) : HandlerOutcome;

    /// <summary>
    /// The downstream asked for a pause (429/503 with Retry-After): the whole group waits, and the attempt does not count
    /// until the message has been throttled more than Processing:MaxConsecutiveThrottles times in a row.
    /// </summary>
    public sealed record Throttled(TimeSpan RetryAfter, string Error, int Status) : HandlerOutcome;

    /// <summary>The handler says retrying cannot help: straight to the dead-letter queue.</summary>
    public sealed record Dead(string Reason) : HandlerOutcome;

    public static Delivered Success { get; } = new();
}
