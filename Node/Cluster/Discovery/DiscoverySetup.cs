using Akka;
using Akka.Actor;
using Akka.Hosting;
using Akka.Management.Cluster.Bootstrap;
using ClusterQueue.Node.Processing;

namespace ClusterQueue.Node.Cluster.Discovery;

/// <summary>
/// How the actor system finds its cluster (<see cref="MembershipDiscovery"/>). With Config nothing is added: Akka
/// joins the seed nodes, or the node joins itself. With Kubernetes: <see cref="KubernetesPodDiscovery"/> lists the
/// pods through the API server with the pod's service account; Akka.Management's Cluster Bootstrap probes each pod's
/// management port (<see cref="BootstrapEndpoint"/>, served here) and joins the members they name, or, when none
/// names any, lets the pod with the lowest address form the cluster and the others join it.
/// </summary>
public static class DiscoverySetup
{
    /// <summary>Only a node configured with neither seed nodes nor discovery forms a cluster on its own at start.</summary>
    public static bool JoinsItself(this MembershipOptions options) =>
        options.Discovery == MembershipDiscovery.Config && options.SeedNodes.Length == 0;

    public static AkkaConfigurationBuilder WithDiscovery(this AkkaConfigurationBuilder builder, MembershipOptions options, ILoggerFactory loggers) =>
        options.Discovery switch
        {
            MembershipDiscovery.Kubernetes => builder.WithKubernetesBootstrap(options, loggers.CreateLogger(typeof(DiscoverySetup))),
            _ => builder,
        };

    private static AkkaConfigurationBuilder WithKubernetesBootstrap(this AkkaConfigurationBuilder builder, MembershipOptions options, ILogger logger)
    {
        var kubernetes = options.Kubernetes;

        // Fails the start at once outside a pod or without its service account, naming what is missing.
        var pods = KubernetesPods.Connect(kubernetes, logger);

        // Bootstrap compares each pod it finds with this address to know which one it is itself: the pod's IP.
        var advertised = options.PublicHostname ?? options.RemotingHost;
        var bootstrap = new ClusterBootstrapOptions();
        bootstrap.ContactPointDiscovery.ServiceName = ActorsSetup.SystemName;
        bootstrap.ContactPointDiscovery.PortName = KubernetesOptions.ManagementPortName;
        bootstrap.ContactPointDiscovery.RequiredContactPointsNr = kubernetes.RequiredContactPoints;
        bootstrap.ContactPointDiscovery.DiscoveryMethod = KubernetesPodDiscovery.Method;
        return builder
            .AddHocon(
                $$"""akka.discovery.{{KubernetesPodDiscovery.Method}}.class = "{{typeof(KubernetesPodDiscovery).AssemblyQualifiedName}}" """,
                HoconAddMode.Prepend)
            .AddSetup(new KubernetesPodsSetup(pods))
            .WithClusterBootstrap(bootstrap, autoStart: false)
            .AddStartup(async (system, _) =>
            {
                CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseActorSystemTerminate, "kubernetes-client-dispose", () =>
                {
                    pods.Dispose();
                    return Task.FromResult(Done.Instance);
                });
                Log.KubernetesDiscovery(logger, pods.Selector, pods.Namespace, advertised, kubernetes.ManagementPort);
                await BootstrapEndpoint.StartAsync(system, options.RemotingHost, advertised, kubernetes.ManagementPort);
            });
    }
}
