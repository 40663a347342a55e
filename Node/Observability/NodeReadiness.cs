using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// Whether this node should get traffic: after start-up recovery, once its Akka.Cluster member is Up (a one-node
/// cluster too), after joining the cluster (when there is one), not
/// once draining has begun, and not while the store refuses writes (a full disk, say), when every ingest would only
/// be answered 503.
/// </summary>
public sealed class NodeReadiness(StoreHealth store)
{
    private volatile bool _recovered;
    private volatile bool _joinRequired;
    private volatile bool _joined;
    private volatile bool _memberUp;
    private volatile bool _memberRemoved;
    private volatile bool _draining;

    public bool IsReady => _recovered && _memberUp && !_memberRemoved && (!_joinRequired || _joined) && !_draining && store.IsWritable;

    public bool IsDraining => _draining;

    /// <summary>Why the node is not ready, for the /readyz answer; null when it is.</summary>
    public string? NotReadyReason =>
        _draining ? "The node is draining."
        : !store.IsWritable ? "The store refuses writes (disk full, I/O error or database unreachable); see the node's log."
        : _memberRemoved ? "The node is no longer a cluster member."
        : !_recovered ? "The node is still recovering."
        : !_memberUp ? "The node's cluster member is not Up yet."
        : _joinRequired && !_joined ? "The node's shard region is not registered with the cluster yet."
        : null;

    public void MarkRecovered() => _recovered = true;

    /// <summary>A cluster member is ready only once it has joined.</summary>
    public void RequireJoin() => _joinRequired = true;

    public void MarkJoined() => _joined = true;

    /// <summary>The actor system's cluster member is Up: it can reach (and be reached by) the other members.</summary>
    public void MarkMemberUp() => _memberUp = true;

    /// <summary>The member left or was downed; it never comes back (a new member needs a new actor system).</summary>
    public void MarkMemberRemoved() => _memberRemoved = true;

    public void MarkDraining() => _draining = true;
}
