using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Cluster;

/// <summary>Shards, their leases and the members' rows; used when the store is PostgreSQL. Bound from ClusterQueue:Cluster.</summary>
public sealed class ClusterOptions : IValidatableObject
{
    public const string Section = "ClusterQueue:Cluster";

    /// <summary>
    /// Groups hash to this many shards, the unit a node owns. Every node must use the same number (the first node
    /// records it and a node with another number refuses to start); 256 spreads evenly over dozens of nodes.
    /// </summary>
    [Range(1, 65_536, ErrorMessage = "ClusterQueue:Cluster:Shards must be between 1 and 65536.")]
    public int Shards { get; set; } = 256;

    /// <summary>
    /// How long a shard lease and a member's row last without renewal: how long a crashed node's leases outlive it, and
    /// so what a failover waits for (the cluster's own failure detection, downing and removal take about 6 s). Long
    /// enough that a loaded node's late renewal does not lose it.
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>How often a node renews its leases and its row: several renewals fit in one TTL, so one slow round trip loses nothing.</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(1.5);

    /// <summary>
    /// A node that has not renewed for LeaseTtl minus this margin stops its actors and cancels their calls, so it is
    /// quiet before any survivor can take its shards. Covers the time to cancel calls and clock-rate drift.
    /// </summary>
    public TimeSpan SafetyMargin { get; set; } = TimeSpan.FromSeconds(2.5);

    /// <summary>A handover waits this long for the moving groups' calls in flight before it cancels them and releases anyway.</summary>
    public TimeSpan HandoverTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Group changes arrive by LISTEN/NOTIFY at once; this poll is the fallback when a notification is missed.</summary>
    public TimeSpan ChangePollInterval { get; set; } = TimeSpan.FromSeconds(5);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        // Bounds first, so the arithmetic below can neither overflow nor compare nonsense.
        var day = TimeSpan.FromDays(1);
        if (LeaseTtl < TimeSpan.FromSeconds(1) || LeaseTtl > day)
        {
            yield return new ValidationResult("ClusterQueue:Cluster:LeaseTtl must be between 1 second and 1 day.");
        }
        else if (RenewInterval <= TimeSpan.Zero || SafetyMargin <= TimeSpan.Zero || HandoverTimeout < TimeSpan.Zero || ChangePollInterval <= TimeSpan.Zero
                 || RenewInterval > day || SafetyMargin > day || HandoverTimeout > day || ChangePollInterval > day)
        {
            yield return new ValidationResult(
                "ClusterQueue:Cluster:RenewInterval, SafetyMargin and ChangePollInterval must be positive, HandoverTimeout not negative, each at most 1 day.");
        }
        else if (RenewInterval * 2 > LeaseTtl - SafetyMargin)
        {
            yield return new ValidationResult(
                "ClusterQueue:Cluster:RenewInterval must fit twice into LeaseTtl minus SafetyMargin, so one late renewal does not stop a healthy node.");
        }
    }
}
