namespace ClusterQueue.Contracts;

/// <summary>How many dead letters went back to the queue.</summary>
public sealed record RedriveResult(int Redriven);
