using Akka.Cluster.Hosting;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Remote.Hosting;
using ClusterQueue.Node.Cluster;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The node's one actor system (Akka.NET, through Akka.Hosting), started and stopped with the host: an Akka.Cluster
/// member, alone (joined to itself) unless seed nodes are configured. Its settings are code and ClusterQueue:Cluster
/// keys (<see cref="MembershipOptions"/>), not a HOCON file for users to edit. Messages between members use
/// <see cref="ClusterMessageSerializer"/>.
/// </summary>
public static class ActorsSetup
{
    public const string SystemName = "clusterqueue";

    /// <summary>What the node sets beyond Akka's defaults; tests build their actor systems from it too.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString(
        $$"""
        akka {
          # Nothing of the node's own timing runs on Akka's scheduler (group actors use TimeProvider timers: at the
          # 10 ms default tick a scheduled message came 8 ms late at p50, a TimeProvider timer 2 ms). The cluster's
          # heartbeats and gossip (every second) do, and keep its wheel ticking for good. Idle one-node cluster, steady
          # state, this project's machines: 0.83% of a core at a 100 ms tick, 0.40% at 250 ms, 0.13% at 500 ms, 0.08% at
          # 1 s. At 500 ms a heartbeat is at most half its interval late, well inside the failure detector's pause.
          scheduler.tick-duration = 500ms

          # A failed group actor stops and leaves its tokens; restarting it in place would start it with a full bucket.
          actor.guardian-supervisor-strategy = "{{typeof(GroupActorSupervision).AssemblyQualifiedName}}"

          # Akka would run its shutdown on SIGTERM by itself, at once, stopping every group actor with its calls in
          # flight. The host runs it instead, after the dispatcher's drain (AkkaHostedService.StopAsync).
          coordinated-shutdown.run-by-clr-shutdown-hook = off

          # Timer ticks and slot offers for actors that have just stopped are expected then.
          log-dead-letters-during-shutdown = off
        }
        """);

    /// <summary>
    /// Adds the actor system; its hosted service starts before the dispatcher's and stops after its drain, running
    /// CoordinatedShutdown (the member leaves the cluster). Needs <see cref="MembershipOptions"/> and
    /// <see cref="ClusterMembership"/> (ClusterSetup.AddCluster).
    /// </summary>
    public static IServiceCollection AddActors(this IServiceCollection services) =>
        services.AddAkka(SystemName, (builder, provider) => builder
            .AddHocon(Settings, HoconAddMode.Prepend)
            .WithMembership(provider.GetRequiredService<IOptions<MembershipOptions>>().Value, provider.GetRequiredService<ClusterMembership>())
            .ConfigureLoggers(loggers =>
            {
                // Akka's own messages go to the node's log, filtered there like any other category.
                loggers.LogLevel = Akka.Event.LogLevel.WarningLevel;
                loggers.ClearLoggers();
                loggers.AddLoggerFactory();
            }));

    private static AkkaConfigurationBuilder WithMembership(this AkkaConfigurationBuilder builder, MembershipOptions options, ClusterMembership membership) =>
        builder
            .WithRemoting(new RemoteOptions
            {
                HostName = options.RemotingHost,
                Port = options.RemotingPort,
                PublicHostName = options.PublicHostname,
            })
            .WithClustering(new Akka.Cluster.Hosting.ClusterOptions { SeedNodes = options.SeedNodes })
            .WithCustomSerializer("clusterqueue", ClusterMessageSerializer.Messages, system => new ClusterMessageSerializer(system))
            .AddStartup((system, _) => membership.Start(system, joinSelf: options.SeedNodes.Length == 0));
}
