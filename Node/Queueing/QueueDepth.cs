namespace ClusterQueue.Node.Queueing;

/// <summary>
/// A group's pending messages (queued, in backoff or in flight) and since when its longest-waiting ready message has
/// been ready: null when none is ready (all in flight, in backoff or not yet due).
/// </summary>
public readonly record struct QueueDepth(long Pending, DateTimeOffset? OldestReadySince);
