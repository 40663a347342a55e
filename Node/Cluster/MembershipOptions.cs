using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Cluster.Discovery;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Where the node's actor system listens and which members it joins: Akka.Cluster membership. Bound from
/// ClusterQueue:Cluster, on every node (the embedded default is a one-node cluster that joins itself).
/// </summary>
public sealed class MembershipOptions : IValidatableObject
{
    public const string Section = ClusterOptions.Section;

    /// <summary>Loopback: a node reaches no other machine unless it is told to; a cluster over hosts names its own address.</summary>
    public string RemotingHost { get; set; } = "127.0.0.1";

    /// <summary>0 takes a free port, so several nodes (and tests) share one machine; a cluster over hosts fixes it (seed nodes name it).</summary>
    [Range(0, 65_535, ErrorMessage = "ClusterQueue:Cluster:RemotingPort must be between 0 and 65535.")]
    public int RemotingPort { get; set; }

    /// <summary>The address other members use when it differs from the one listened on (a container listening on 0.0.0.0); unset: RemotingHost.</summary>
    public string? PublicHostname { get; set; }

    /// <summary>
    /// Members to join, as akka.tcp://clusterqueue@host:port addresses (one is enough; the first in the list that is
    /// itself forms the cluster when none answers). None: the node joins itself, a one-node cluster.
    /// </summary>
    public string[] SeedNodes { get; set; } = [];

    /// <summary>Config (seed nodes, or alone): what a node needs outside an orchestrator; Kubernetes is opted into by the chart and the kustomize base.</summary>
    public MembershipDiscovery Discovery { get; set; } = MembershipDiscovery.Config;

    /// <summary>Where a pod finds the others when Discovery is Kubernetes (ClusterQueue:Cluster:Kubernetes).</summary>
    public KubernetesOptions Kubernetes { get; set; } = new();

    /// <summary>TLS between members (ClusterQueue:Cluster:Tls): off unless a certificate is given.</summary>
    public RemotingTlsOptions Tls { get; set; } = new();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(RemotingHost))
        {
            yield return new ValidationResult("ClusterQueue:Cluster:RemotingHost must name an address to listen on.", [nameof(RemotingHost)]);
        }

        if (PublicHostname is not null && string.IsNullOrWhiteSpace(PublicHostname))
        {
            yield return new ValidationResult("ClusterQueue:Cluster:PublicHostname must not be blank.", [nameof(PublicHostname)]);
        }

        var scheme = Tls.Enabled ? "akka.ssl.tcp" : "akka.tcp";
        foreach (var seed in SeedNodes)
        {
            if (!IsSeedAddress(seed, scheme))
            {
                yield return new ValidationResult(
                    $"ClusterQueue:Cluster:SeedNodes has '{seed}'; each must be {scheme}://{Processing.ActorsSetup.SystemName}@host:port{(Tls.Enabled ? " (TLS is on)" : "")}.",
                    [nameof(SeedNodes)]);
            }
        }

        foreach (var result in Tls.Validate())
        {
            yield return result;
        }

        if (!Enum.IsDefined(Discovery))
        {
            yield return new ValidationResult("ClusterQueue:Cluster:Discovery must be Config or Kubernetes.", [nameof(Discovery)]);
        }
        else if (Discovery == MembershipDiscovery.Kubernetes)
        {
            foreach (var result in Kubernetes.Validate(this))
            {
                yield return result;
            }
        }
    }

    /// <summary>An address of this system's name and transport with a host and a port: another would never answer a join.</summary>
    private static bool IsSeedAddress(string seed, string scheme) =>
        Uri.TryCreate(seed, UriKind.Absolute, out var uri)
        && uri.Scheme == scheme
        && uri.UserInfo == Processing.ActorsSetup.SystemName
        && !string.IsNullOrEmpty(uri.Host)
        && uri.Port is > 0 and <= 65_535
        && uri.AbsolutePath is "" or "/";
}
