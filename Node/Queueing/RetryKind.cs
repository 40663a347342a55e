namespace ClusterQueue.Node.Queueing;

public enum RetryKind
{
    /// <summary>The attempt failed and counts against maxAttempts; it ends the message's run of throttles.</summary>
    Failed,

    /// <summary>The downstream asked us to slow down; the attempt does not count, and the message's run of throttles grows.</summary>
    Throttled,

    /// <summary>
    /// The downstream asked us to slow down once more than Processing:MaxConsecutiveThrottles times in a row: the attempt
    /// counts against maxAttempts as a failure would, and the run of throttles goes on growing.
    /// </summary>
    ThrottledCounted,
}
