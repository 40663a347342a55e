namespace ClusterQueue.Contracts;

/// <summary>
/// Adaptive back-pressure (AIMD): when the target answers 429 or 503 repeatedly, the group's effective rate is
/// multiplied by DecreaseFactor (not below MinRatePerSecond); while calls succeed it grows back by IncreasePerSecond
/// each second, never above ratePerSecond. Absent fields take defaults: enabled true, decreaseFactor 0.5,
/// increasePerSecond a tenth of ratePerSecond, minRatePerSecond a hundredth of it.
/// </summary>
public sealed record AdaptiveRateDefinition
{
    public bool? Enabled { get; init; }
    public double? DecreaseFactor { get; init; }
    public double? IncreasePerSecond { get; init; }
    public double? MinRatePerSecond { get; init; }
}
