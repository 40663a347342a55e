namespace ClusterQueue.Contracts;

/// <summary>A finished continuation step: the cursor the downstream returned with it, its HTTP status and when it ended.</summary>
public sealed record MessageStep(int Step, string Cursor, int Status, DateTimeOffset FinishedAt);
