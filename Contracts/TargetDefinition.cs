namespace ClusterQueue.Contracts;

/// <summary>Where the HTTP-forward handler POSTs each message.</summary>
public sealed record TargetDefinition
{
    public string? Url { get; init; }
}
