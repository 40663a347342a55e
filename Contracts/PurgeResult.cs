namespace ClusterQueue.Contracts;

/// <summary>POST /v1/groups/{id}/purge?confirm={id} (queued messages) or .../dead-letters/purge?confirm={id} (dead letters): how many were deleted.</summary>
public sealed record PurgeResult(int Purged);
