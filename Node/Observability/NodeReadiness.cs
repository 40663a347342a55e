using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// Whether this node should get traffic: after start-up recovery, once its Akka.Cluster member is Up (a one-node
/// cluster too) and its shard region is registered with the shard coordinator, not once draining has begun, and not while the store refuses writes (a full disk, say), when every ingest would only
/// be answered 503.
/// </summary>
public sealed class NodeReadiness(StoreHealth store)
{
    private volatile bool _recovered;
    private volatile bool _regionRequired;
    private volatile bool _regionRegistered;
    private volatile bool _memberUp;
    private volatile bool _memberRemoved;
    private volatile bool _draining;

    public bool IsReady => _recovered && _memberUp && !_memberRemoved && (!_regionRequired || _regionRegistered) && !_draining && store.IsWritable;

    public bool IsDraining => _draining;

    /// <summary>Why the node is not ready, for the /readyz answer; null when it is.</summary>
    public string? NotReadyReason =>
        _draining ? "The node is draining."
        : !store.IsWritable ? "The store refuses writes (disk full, I/O error or database unreachable); see the node's log."
        : _memberRemoved ? "The node is no longer a cluster member."
        : !_recovered ? "The node is still recovering."
        : !_memberUp ? "The node's cluster member is not Up yet."
        : _regionRequired && !_regionRegistered ? "The node's shard region is not registered with the cluster yet."
        : null;

    public void MarkRecovered() => _recovered = true;

    /// <summary>A node with a shard region is ready only once the region is registered with the shard coordinator.</summary>
    public void RequireShardRegion() => _regionRequired = true;

    public void MarkShardRegionRegistered() => _regionRegistered = true;

    /// <summary>The actor system's cluster member is Up: it can reach (and be reached by) the other members.</summary>
    public void MarkMemberUp() => _memberUp = true;

    /// <summary>The member left or was downed; it never comes back (a new member needs a new actor system).</summary>
    public void MarkMemberRemoved() => _memberRemoved = true;

    public void MarkDraining() => _draining = true;
}
