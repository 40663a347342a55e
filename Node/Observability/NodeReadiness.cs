namespace ClusterQueue.Node.Observability;

/// <summary>
/// Whether this node should get traffic: after start-up recovery, after joining the cluster (when there is one), and
/// not once draining has begun.
/// </summary>
public sealed class NodeReadiness
{
    private volatile bool _recovered;
    private volatile bool _joinRequired;
    private volatile bool _joined;
    private volatile bool _draining;

    public bool IsReady => _recovered && (!_joinRequired || _joined) && !_draining;

    public bool IsDraining => _draining;

    public void MarkRecovered() => _recovered = true;

    /// <summary>A cluster member is ready only once it has joined.</summary>
    public void RequireJoin() => _joinRequired = true;

    public void MarkJoined() => _joined = true;

    public void MarkDraining() => _draining = true;
}
