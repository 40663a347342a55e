namespace ClusterQueue.Contracts;

/// <summary>GET /v1/messages/{id}. state is queued, delivered or dead.</summary>
public sealed record MessageStatus(
    string MessageId,
    string GroupId,
    string State,
    int Attempts,
    string? LastError,
    DateTimeOffset CreatedAt,
    DateTimeOffset? VisibleAt,
    DateTimeOffset? CompletedAt,
    MessageResult? Result = null,
    int Step = 1,
    string? Cursor = null,
    IReadOnlyList<MessageStep>? Steps = null,
    IReadOnlyList<AttemptRecord>? AttemptHistory = null);
