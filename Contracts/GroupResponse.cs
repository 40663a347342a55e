namespace ClusterQueue.Contracts;

/// <summary>A stored group with every default filled in. The verification secret is never returned.</summary>
public sealed record GroupResponse(
    string Id,
    double RatePerSecond,
    int Burst,
    int MaxConcurrency,
    TargetDefinition Target,
    double HandlerTimeoutSeconds,
    int MaxAttempts,
    RetryBackoffResponse RetryBackoff,
    VerificationResponse? Verification,
    long MaxPayloadBytes,
    int MaxSteps,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    bool Paused = false,
    DateTimeOffset? PausedAt = null,
    AdaptiveRateDefinition? AdaptiveRate = null);
