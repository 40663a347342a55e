namespace ClusterQueue.Contracts;

/// <summary>POST /v1/groups/{id}/dead-letters/redrive. Without messageIds every dead letter of the group goes back to the queue.</summary>
public sealed record RedriveRequest
{
    public IReadOnlyList<string>? MessageIds { get; init; }
}
