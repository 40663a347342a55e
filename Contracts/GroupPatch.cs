namespace ClusterQueue.Contracts;

/// <summary>PATCH /v1/groups/{id}: every field present replaces the stored one; absent fields keep their value.</summary>
public sealed record GroupPatch
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
}
