namespace ClusterQueue.Contracts;

/// <summary>Exponential backoff with jitter between failed attempts.</summary>
public sealed record RetryBackoffDefinition
{
    public double? InitialSeconds { get; init; }
    public double? MaxSeconds { get; init; }
}
