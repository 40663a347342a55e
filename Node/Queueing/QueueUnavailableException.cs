namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The queue's service could not take the change (SQS unreachable or throttling through every retry). Nothing was
/// changed; the caller answers 503 with Retry-After and the client tries again.
/// </summary>
public sealed class QueueUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException)
{
    /// <summary>Long enough for a blip to pass, short enough that a sender's retry lands soon after recovery.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);
}
