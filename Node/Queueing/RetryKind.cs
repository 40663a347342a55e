namespace ClusterQueue.Node.Queueing;

public enum RetryKind
{
    /// <summary>The attempt failed and counts against maxAttempts.</summary>
    Failed,

    /// <summary>The downstream asked us to slow down; the attempt does not count.</summary>
    Throttled,
}
