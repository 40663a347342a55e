namespace ClusterQueue.Node.Queueing;

/// <summary>
/// What the downstream answered to the call that delivered a message, kept for a caller waiting on the message
/// (<c>POST /hooks/{id}?wait=</c>) and shown in its status. Body is null when it was larger than
/// <c>Ingress:MaxResultBytes</c>: a result is an answer for a waiting client, not a file store.
/// </summary>
public sealed record DeliveryResult(int Status, string? ContentType, byte[]? Body);
