namespace ClusterQueue.Contracts;

/// <summary>The backoff a group uses, defaults filled in.</summary>
public sealed record RetryBackoffResponse(double InitialSeconds, double MaxSeconds);
