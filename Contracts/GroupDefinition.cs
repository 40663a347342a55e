namespace ClusterQueue.Contracts;

/// <summary>
/// A task group as written by PUT /v1/groups/{id} (absent optional fields take their defaults) or by
/// PATCH /v1/groups/{id} (fields present replace the stored ones, absent fields keep theirs).
/// </summary>
public sealed record GroupDefinition
{
    public double? RatePerSecond { get; init; }
    public int? Burst { get; init; }
    public int? MaxConcurrency { get; init; }
    public TargetDefinition? Target { get; init; }
    public double? HandlerTimeoutSeconds { get; init; }
    public int? MaxAttempts { get; init; }
    public RetryBackoffDefinition? RetryBackoff { get; init; }
    public VerificationDefinition? Verification { get; init; }
    public long? MaxPayloadBytes { get; init; }

    /// <summary>Continuation steps one message may take (the downstream answering ClusterQueue-Continue); default 100.</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Adaptive back-pressure against a target that answers 429/503; off when absent.</summary>
    public AdaptiveRateDefinition? AdaptiveRate { get; init; }
}
