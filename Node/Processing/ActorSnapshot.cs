namespace ClusterQueue.Node.Processing;

/// <summary>A group actor's live state, as its own loop saw it.</summary>
public sealed record ActorSnapshot(int InFlight, double Tokens, double RatePerSecond, DateTimeOffset? PausedUntil);
