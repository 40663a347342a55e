namespace ClusterQueue.Contracts;

/// <summary>POST /v1/groups/{id}/purge?confirm={id}: how many queued messages were deleted.</summary>
public sealed record PurgeResult(int Purged);
