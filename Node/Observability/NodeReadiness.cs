namespace ClusterQueue.Node.Observability;

/// <summary>Ready once the start-up recovery scan has woken every group with pending messages; not ready again once draining starts.</summary>
public sealed class NodeReadiness
{
    private volatile bool _recovered;
    private volatile bool _draining;

    public bool IsReady => _recovered && !_draining;

    public bool IsDraining => _draining;

    public void MarkRecovered() => _recovered = true;

    public void MarkDraining() => _draining = true;
}
