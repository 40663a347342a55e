namespace ClusterQueue.Node.Queueing;

/// <summary>Queued and Dead are current sizes; the rest are totals since the group was defined.</summary>
public sealed record QueueCounts(long Queued, long Dead, long Ingested, long Delivered, long Failed, long DeadLettered, long Throttled);
