namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>What a failed SQS call means to its caller, whatever spelling of the error code the server used.</summary>
public enum SqsErrorKind
{
    /// <summary>The queue was never created or has been deleted.</summary>
    QueueDoesNotExist,

    /// <summary>SQS asked us to slow down, and kept asking through every retry.</summary>
    Throttled,

    /// <summary>A per-queue limit was reached (for example too many in-flight messages).</summary>
    OverLimit,

    /// <summary>The request itself is wrong (a bad parameter, receipt handle or batch); retrying cannot help.</summary>
    InvalidRequest,

    /// <summary>The service failed or could not be reached through every retry: an outage the caller must surface.</summary>
    Unavailable,

    /// <summary>Anything else, such as rejected credentials; the AWS error code says which.</summary>
    Other,
}
