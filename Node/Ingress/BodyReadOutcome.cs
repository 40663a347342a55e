namespace ClusterQueue.Node.Ingress;

/// <summary>How reading a request body ended.</summary>
internal enum BodyReadOutcome
{
    /// <summary>The whole body, within the group's limit.</summary>
    Complete,

    /// <summary>More bytes than the group accepts, declared or sent: 413.</summary>
    TooLarge,

    /// <summary>The bytes uploads in progress hold on this node reached Ingress:MaxBufferedBytes: 503, retry later.</summary>
    NoRoom,

    /// <summary>The client stopped before its body's end: it hung up, or sent too slowly for Kestrel's minimum data rate.</summary>
    Cut,
}
