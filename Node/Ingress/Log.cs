namespace ClusterQueue.Node.Ingress;

internal static partial class Log
{
    /// <summary>The category ingress logs under.</summary>
    public const string Category = "ClusterQueue.Node.Ingress";

    // A client that hangs up mid-upload is the client's business, not a fault of the node: one line, no stack trace.
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Upload to group {GroupId} ended early after {Received} bytes: {Reason}")]
    public static partial void UploadCut(ILogger logger, string groupId, long received, string reason);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Upload to group {GroupId} refused: uploads in progress hold {Held} of the {Limit} bytes this node buffers (Ingress:MaxBufferedBytes)")]
    public static partial void UploadsFull(ILogger logger, string groupId, long held, long limit);
}
