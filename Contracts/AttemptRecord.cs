namespace ClusterQueue.Contracts;

/// <summary>
/// One attempt that did not deliver the message. Outcome is failed (retried), throttled (429/503 with Retry-After, not
/// counted) or dead (the last one). Status is the target's HTTP status, null when it did not answer (connection
/// error, timeout).
/// </summary>
public sealed record AttemptRecord(int Attempt, DateTimeOffset StartedAt, long DurationMs, int? Status, string Error, string Outcome)
{
    /// <summary>The step of a long job the attempt was for: 1 for a message that never continued. Each step counts its attempts from 1.</summary>
    public int Step { get; init; } = 1;
}
