namespace ClusterQueue.Node.Cluster.Discovery;

internal static partial class Log
{
    [LoggerMessage(EventId = 780, Level = LogLevel.Information,
        Message = "Finding cluster members through the Kubernetes API: pods matching {Selector} in namespace {Namespace}; this pod is {Address}, management port {ManagementPort}")]
    public static partial void KubernetesDiscovery(ILogger logger, string selector, string @namespace, string address, int managementPort);

    [LoggerMessage(EventId = 781, Level = LogLevel.Warning,
        Message = "Could not list the pods matching {Selector} in namespace {Namespace} ({Reason}); Cluster Bootstrap retries")]
    public static partial void ListFailed(ILogger logger, string @namespace, string selector, string reason, Exception exception);

    [LoggerMessage(EventId = 782, Level = LogLevel.Debug, Message = "Listed {Pods} pods, {Targets} with a management port: {ContactPoints}")]
    public static partial void PodsListed(ILogger logger, int pods, int targets, string contactPoints);
}
