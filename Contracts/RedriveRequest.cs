namespace ClusterQueue.Contracts;

/// <summary>
/// POST /v1/groups/{id}/dead-letters/redrive and .../purge: which dead letters. messageIds names them; deadAfter and
/// deadBefore (either or both) take those that died in [deadAfter, deadBefore); with none of these, all of the group's.
/// </summary>
public sealed record RedriveRequest
{
    public IReadOnlyList<string>? MessageIds { get; init; }
    public DateTimeOffset? DeadAfter { get; init; }
    public DateTimeOffset? DeadBefore { get; init; }
}
