namespace ClusterQueue.Contracts;

/// <summary>A message that used up its attempts, with the last error seen and every undelivered attempt (the 100 newest).</summary>
public sealed record DeadLetter(
    string MessageId,
    string GroupId,
    int Attempts,
    string? LastError,
    DateTimeOffset CreatedAt,
    DateTimeOffset DeadAt,
    string? ContentType,
    long SizeBytes,
    IReadOnlyList<AttemptRecord>? AttemptHistory = null);
