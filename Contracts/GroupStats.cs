namespace ClusterQueue.Contracts;

/// <summary>GET /v1/groups/{id}/stats. Counters are totals since the group was defined.</summary>
public sealed record GroupStats(
    string GroupId,
    long Queued,
    int InFlight,
    long Ingested,
    long Delivered,
    long Failed,
    long Dead,
    long Throttled,
    double Tokens,
    double RatePerSecond,
    DateTimeOffset? PausedUntil);
