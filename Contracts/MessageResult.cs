namespace ClusterQueue.Contracts;

/// <summary>
/// What the downstream answered to the call that delivered a message a sender waited for (POST /hooks/{id}?wait=).
/// Body is the UTF-8 text of the answer; BodyBase64 carries it instead when it is not text. Both are null when the
/// body was larger than the node keeps (ClusterQueue:Ingress:MaxResultBytes, 1 MiB by default).
/// </summary>
public sealed record MessageResult(int Status, string? ContentType, string? Body, string? BodyBase64);
