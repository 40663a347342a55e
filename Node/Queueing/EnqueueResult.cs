namespace ClusterQueue.Node.Queueing;

public enum EnqueueOutcome
{
    /// <summary>Durable and queued.</summary>
    Accepted,

    /// <summary>The delivery id was seen inside the dedup window; MessageId names the first message.</summary>
    Duplicate,

    /// <summary>The group was removed between the lookup and the write; nothing was stored.</summary>
    GroupNotFound,

    /// <summary>An earlier request with the same delivery id is still being accepted (SQS queue); the sender should retry shortly.</summary>
    Busy,
}

public readonly record struct EnqueueResult(EnqueueOutcome Outcome, string MessageId);
