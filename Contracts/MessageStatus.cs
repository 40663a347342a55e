namespace ClusterQueue.Contracts;

/// <summary>
/// GET /v1/messages/{id}. state is queued, delivered or dead. Result is the downstream's answer, kept only for a
/// message sent with ?wait=. Step is the continuation step to run next (1 until the downstream continues), Cursor the
/// cursor that step carries, Steps the finished steps in order.
/// </summary>
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
