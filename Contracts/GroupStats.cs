namespace ClusterQueue.Contracts;

/// <summary>
/// GET /v1/groups/{id}/stats. Counters are totals since the group was defined. PausedUntil is a pause the downstream
/// asked for (Retry-After); Paused and PausedAt are an operator's pause (POST /v1/groups/{id}/pause).
/// </summary>
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
    DateTimeOffset? PausedUntil,
    bool Paused = false,
    DateTimeOffset? PausedAt = null,
    double? EffectiveRatePerSecond = null);
