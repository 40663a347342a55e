using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.RegularExpressions;

namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>
/// Where a node in a Kubernetes pod looks for the other members (ClusterQueue:Cluster:Kubernetes); read only when
/// ClusterQueue:Cluster:Discovery is Kubernetes. The pods are listed through the API server with the pod's service
/// account; each one found is asked for the cluster's members on its container port named "management".
/// </summary>
public sealed partial class KubernetesOptions
{
    public const string Section = ClusterOptions.Section + ":Kubernetes";

    /// <summary>The container port name peers look up in each pod's spec: the same in every ClusterQueue manifest.</summary>
    public const string ManagementPortName = "management";

    /// <summary>The label the chart and the kustomize base put on every ClusterQueue pod (the chart adds its release's instance label).</summary>
    public string PodLabelSelector { get; set; } = "app.kubernetes.io/name=clusterqueue";

    /// <summary>Akka.Management's own default port; every pod declares it as its "management" container port.</summary>
    public int ManagementPort { get; set; } = 8558;

    /// <summary>
    /// Pods that must be found (and have answered) before the lowest-addressed one forms a new cluster. 1: a single
    /// replica must form its cluster too; the API server lists every running pod at once and a new cluster waits a
    /// stable 5 s for that list to settle. Set a majority of the initial replicas (the chart and base do) so a new
    /// cluster always holds most of them. Joining an existing cluster never waits for it.
    /// </summary>
    public int RequiredContactPoints { get; set; } = 1;

    /// <summary>Unset: the pod's own namespace, as its service account names it; a release's pods live in one namespace.</summary>
    public string? Namespace { get; set; }

    /// <summary>
    /// Where Kubernetes mounts the pod's service-account token and namespace files. (The API server's CA certificate is
    /// read from this standard path by the Kubernetes client whatever this says.)
    /// </summary>
    public string ServiceAccountPath { get; set; } = "/var/run/secrets/kubernetes.io/serviceaccount";

    internal IEnumerable<ValidationResult> Validate(MembershipOptions membership)
    {
        if (membership.SeedNodes.Length > 0)
        {
            yield return Invalid(
                "ClusterQueue:Cluster:SeedNodes must be empty when ClusterQueue:Cluster:Discovery is Kubernetes: the pods API finds the members, and fixed seed nodes would make Cluster Bootstrap stand aside.",
                nameof(membership.SeedNodes));
        }

        var advertised = membership.PublicHostname ?? membership.RemotingHost;
        if (IPAddress.TryParse(advertised, out var address) && (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)))
        {
            yield return Invalid(
                $"ClusterQueue:Cluster:PublicHostname must be the pod's IP (status.podIP) when ClusterQueue:Cluster:RemotingHost is {advertised}: other pods reach this node, and it recognises itself among the pods, by that address.",
                nameof(membership.PublicHostname));
        }

        if (string.IsNullOrWhiteSpace(PodLabelSelector) || !SelectorShape().IsMatch(PodLabelSelector))
        {
            yield return Invalid(
                $"{Section}:PodLabelSelector must be a Kubernetes label selector such as app.kubernetes.io/name=clusterqueue (got '{PodLabelSelector}').",
                nameof(PodLabelSelector));
        }

        if (ManagementPort is < 1 or > 65_535)
        {
            yield return Invalid($"{Section}:ManagementPort must be between 1 and 65535 (got {ManagementPort}).", nameof(ManagementPort));
        }
        else if (ManagementPort == membership.RemotingPort)
        {
            yield return Invalid($"{Section}:ManagementPort must differ from ClusterQueue:Cluster:RemotingPort (both are {ManagementPort}).", nameof(ManagementPort));
        }

        if (RequiredContactPoints is < 1 or > 1_000)
        {
            yield return Invalid($"{Section}:RequiredContactPoints must be between 1 and 1000 (got {RequiredContactPoints}).", nameof(RequiredContactPoints));
        }

        if (Namespace is not null && !NamespaceShape().IsMatch(Namespace))
        {
            yield return Invalid(
                $"{Section}:Namespace must be a Kubernetes namespace name (lower-case letters, digits and '-', at most 63) or unset for the pod's own (got '{Namespace}').",
                nameof(Namespace));
        }

        if (string.IsNullOrWhiteSpace(ServiceAccountPath) || !Path.IsPathFullyQualified(ServiceAccountPath))
        {
            yield return Invalid($"{Section}:ServiceAccountPath must be an absolute directory path (got '{ServiceAccountPath}').", nameof(ServiceAccountPath));
        }
    }

    private static ValidationResult Invalid(string message, string member) => new(message, [member]);

    /// <summary>
    /// Label keys, values and the operators of both selector syntaxes (=, ==, !=, in, notin, !key), nothing else: the
    /// selector is also a format string to Akka's discovery, where a brace would break the lookup at run time.
    /// </summary>
    [GeneratedRegex(@"^[A-Za-z0-9._/\-=!,() ]+$")]
    private static partial Regex SelectorShape();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex NamespaceShape();
}
