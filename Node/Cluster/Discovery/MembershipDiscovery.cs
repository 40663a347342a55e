namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>How a node finds the other members of its cluster (ClusterQueue:Cluster:Discovery).</summary>
public enum MembershipDiscovery
{
    /// <summary>The configured seed nodes, or none: the node joins itself (a one-node cluster).</summary>
    Config,

    /// <summary>
    /// The pods the Kubernetes API lists under a label selector: Akka.Management's Cluster Bootstrap asks each one's
    /// management endpoint for its members, joins them, or forms the cluster (the lowest address) when there are none.
    /// </summary>
    Kubernetes,
}
