using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Discovery;

namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>
/// Akka.Discovery over <see cref="KubernetesPods"/>: what Cluster Bootstrap asks for contact points. Akka creates it by
/// name (akka.discovery.clusterqueue-kubernetes.class); the pods it lists come in through <see cref="KubernetesPodsSetup"/>.
/// </summary>
/// <remarks>
/// Akka.Discovery.KubernetesApi 1.5.73 does the same but was built against KubernetesClient 17, which the registry no
/// longer serves; against 19 or 21 its lookup fails with MissingMethodException.
/// </remarks>
public sealed class KubernetesPodDiscovery(ExtendedActorSystem system) : ServiceDiscovery
{
    internal const string Method = "clusterqueue-kubernetes";

    private readonly KubernetesPods _pods = system.Settings.Setup.Get<KubernetesPodsSetup>().Value?.Pods
        ?? throw new InvalidOperationException($"{nameof(KubernetesPodDiscovery)} needs a {nameof(KubernetesPodsSetup)} in the actor system's setup.");

    public override async Task<Resolved> Lookup(Lookup lookup, TimeSpan resolveTimeout)
    {
        using var timeout = new CancellationTokenSource(resolveTimeout);
        return new Resolved(lookup.ServiceName, await _pods.ListAsync(lookup.PortName, timeout.Token));
    }
}

/// <summary>Hands the node's <see cref="KubernetesPods"/> to the discovery Akka creates.</summary>
internal sealed class KubernetesPodsSetup(KubernetesPods pods) : Setup
{
    public KubernetesPods Pods { get; } = pods;
}
