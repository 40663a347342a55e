using Akka.Cluster.Hosting;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Remote.Hosting;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Cluster.Leases;
using ClusterQueue.Node.Cluster.Discovery;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The node's one actor system (Akka.NET, through Akka.Hosting), started and stopped with the host: an Akka.Cluster
/// member whose group actors are Akka.Cluster.Sharding entities (<see cref="GroupShards"/>). With the PostgreSQL store
/// every shard is fenced by a PostgreSQL lease (<see cref="PostgresLease"/>) and the split brain resolver decides by
/// the same kind of lease. Its settings are code and ClusterQueue:* keys, not a HOCON file for users to edit. Messages
/// between members, and the group states saved in the store (<see cref="GroupStateStore"/>), use
/// <see cref="ClusterMessageSerializer"/>.
/// </summary>
public static class ActorsSetup
{
    public const string SystemName = "clusterqueue";

    /// <summary>The split brain resolver's lease: the side of a partition that holds it stays up, the other downs itself.</summary>
    public const string SplitBrainLease = SystemName + "-split-brain";

    /// <summary>What the node sets beyond Akka's defaults, whatever its store; tests build their actor systems from it too.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString(
        """
        akka {
          # Nothing of the node's own timing runs on Akka's scheduler (group actors use TimeProvider timers: at the
          # 10 ms default tick a scheduled message came 8 ms late at p50, a TimeProvider timer 2 ms). The cluster's
          # heartbeats, gossip and failover steps do, and keep its wheel ticking for good. Idle one-node cluster, steady
          # state, this project's machines: 0.83% of a core at a 100 ms tick, 0.40% at 250 ms, 0.13% at 500 ms, 0.08% at
          # 1 s. Each step of a failover (the reaper, the leader's removal, the coordinator's moves, a shard's lease
          # retry) waits for a tick: at 500 ms they added seconds to it.
          scheduler.tick-duration = 250ms

          # Akka would run its shutdown on SIGTERM by itself, at once, stopping every group actor with its calls in
          # flight. The host runs it instead, after the dispatcher's drain (AkkaHostedService.StopAsync).
          coordinated-shutdown.run-by-clr-shutdown-hook = off

          # Timer ticks and slot offers for actors that have just stopped are expected then.
          log-dead-letters-during-shutdown = off

          cluster.sharding {
            # A group actor passivates itself once idle with a full bucket (it alone knows when a new actor starting
            # full would not be a second burst), so no timer passivates it; and none is remembered: the store is the
            # source of truth, and the sweeps wake what has work.
            passivate-idle-entity-after = off
            remember-entities = off
            # A clustered node keeps the coordinator's state in the database instead (CoordinatorState).
            state-store-mode = ddata

            # How often the coordinator moves shards to the member that should own them (RendezvousAllocation), a
            # wave at a time: the next wave starts within this of the last one's end. Akka's default is 10 s.
            rebalance-interval = 250ms
          }
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
            .AddHocon(Timing(provider), HoconAddMode.Prepend)
            .WithMembership(provider.GetRequiredService<IOptions<MembershipOptions>>().Value, provider.GetRequiredService<ClusterMembership>(), provider.GetRequiredService<NodeIdentity>())
            .WithGroupStates(provider.GetRequiredService<Storage.SqlDatabase>())
            .WithPostgresCluster(provider)
            .AddStartup(async (system, _) =>
            {
                var dispatcher = provider.GetRequiredService<GroupDispatcher>();
                var seeds = provider.GetService<DatabaseSeeds>();
                await GroupShards.StartAsync(system, dispatcher, seeds is null ? null : () => seeds.LapsedNodes);
                var membership = provider.GetRequiredService<ClusterMembership>();
                membership.MembersChanged += dispatcher.SweepSoon;
                dispatcher.BeforeHandoff = membership.StopAnnouncingAsync;
                if (seeds is not null)
                {
                    dispatcher.ShardsLeaveInWaves = () => membership.UpMembers > 1;
                }
            })
            .WithDiscovery(provider.GetRequiredService<IOptions<MembershipOptions>>().Value, provider.GetRequiredService<ILoggerFactory>())
            .ConfigureLoggers(loggers =>
            {
                // Akka's own messages go to the node's log, filtered there like any other category (Akka.Actor.ActorSystem):
                // Akka only makes the events that category lets through, warnings and errors unless configured lower.
                loggers.LogLevel = AkkaLevel(provider.GetRequiredService<ILoggerFactory>().CreateLogger<Akka.Actor.ActorSystem>());
                loggers.ClearLoggers();
                loggers.AddLogger<NodeAkkaLogger>();
            }));

    /// <summary>
    /// The settings that follow the node's own: how long a shard's handoff may take (the actors wait for their calls
    /// up to the drain or handover timeout), and, with the PostgreSQL store, the leases and the split brain resolver.
    /// </summary>
    private static Config Timing(IServiceProvider provider)
    {
        var processing = provider.GetRequiredService<IOptions<ProcessingOptions>>().Value;
        var cluster = provider.GetRequiredService<IOptions<Cluster.ClusterOptions>>().Value;
        var ownership = provider.GetRequiredService<ShardOwnership>();

        // Akka's handoff gives the actors this minus 5 s; the shutdown phase that runs it must not cut it short.
        var handoff = Seconds((processing.DrainTimeout > cluster.HandoverTimeout ? processing.DrainTimeout : cluster.HandoverTimeout) + TimeSpan.FromSeconds(15));
        var common = $$"""
            akka.cluster.sharding.handoff-timeout = {{handoff}}
            akka.coordinated-shutdown.phases.cluster-sharding-shutdown-region.timeout = {{handoff}}
            """;
        if (!ownership.IsClustered)
        {
            return ConfigurationFactory.ParseString(common);
        }

        var leaseTiming = $$"""
            {
              heartbeat-timeout = {{Seconds(cluster.LeaseTtl)}}
              heartbeat-interval = {{Seconds(cluster.RenewInterval)}}
              safety-margin = {{Seconds(cluster.SafetyMargin)}}
            }
            """;
        return ConfigurationFactory.ParseString($$"""
            {{common}}
            {{PostgresLease.ConfigPath}} {{leaseTiming}}
            {{PostgresLease.ShardConfigPath}} {{leaseTiming}}
            akka.cluster {
              sharding {
                # A shard starts no group actor until it holds its lease: a new owner waits for the old one's release
                # (a handover) or expiry (a failure), and a node that cannot renew stops its shards first.
                use-lease = "{{PostgresLease.ShardConfigPath}}"
                # How soon a shard whose lease is still held elsewhere asks again: a released lease is taken within this.
                lease-retry-interval = 200ms
                # After a member is removed its shards' groups wait for the coordinator (which may have moved with it)
                # and for their regions to ask again; Akka's defaults (2 s, 5 s) added seconds to every failover.
                retry-interval = 500ms
                coordinator-failure-backoff = 1s
              }
              singleton.hand-over-retry-interval = 500ms

              # A dead member's shards wait for its removal: the failure detector (Akka's defaults, a heartbeat every
              # 1 s and 3 s of acceptable pause), the resolver's stable-after, the leader's removal, the coordinator.
              # By default Akka looks for the unreachable and removes the downed once a second, and gossips once a second.
              unreachable-nodes-reaper-interval = 250ms
              leader-actions-interval = 250ms
              gossip-interval = 500ms
              # Once a member is removed, Akka would wait this again (by default stable-after) before it moved the
              # coordinator and the member's shards, so that a downed member that still runs has stopped them. The shard
              # leases see to that here: no shard starts before its lease is released or expired.
              down-removal-margin = 100ms
              downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
              split-brain-resolver {
                active-strategy = lease-majority
                # Akka's default is 20 s. The shard leases make a short one safe: a member downed while it still runs
                # cannot have its groups started elsewhere until its leases are released or expire, and its watchdog
                # stops them before that. The resolver decides at its next tick (every second) after this.
                stable-after = 1s
                lease-majority {
                  lease-implementation = "{{PostgresLease.ConfigPath}}"
                  lease-name = "{{SplitBrainLease}}"
                }
              }
            }
            """).WithFallback(PostgresLease.DefaultConfig);
    }

    // A clustered node's store is PostgreSQL (ClusterSetup.AddCluster). Its shard leases are freed in the background
    // (PostgresLease.Release): the actor system's last shutdown phase waits for them, before the store closes.
    private static AkkaConfigurationBuilder WithPostgresCluster(this AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        if (!provider.GetRequiredService<ShardOwnership>().IsClustered)
        {
            return builder;
        }

        var releases = provider.GetRequiredService<PendingLeaseReleases>();
        return builder
            .WithCoordinatorState(provider.GetRequiredService<Storage.PostgresDatabase>().CoordinatorConnection)
            .AddStartup((system, _) => Akka.Actor.CoordinatedShutdown.Get(system).AddTask(
                Akka.Actor.CoordinatedShutdown.PhaseBeforeActorSystemTerminate,
                "free-shard-leases",
                async () =>
                {
                    await releases.WaitAsync(LeaseReleaseWait);
                    return Akka.Done.Instance;
                }));
    }

    // A release takes milliseconds when the database answers; when it does not, each of its steps gives up at
    // lease-operation-timeout (5 s) and the rows expire by themselves. Within the phase's default timeout (10 s).
    private static readonly TimeSpan LeaseReleaseWait = TimeSpan.FromSeconds(6);

    private static Akka.Event.LogLevel AkkaLevel(ILogger logger) =>
        logger.IsEnabled(LogLevel.Debug) ? Akka.Event.LogLevel.DebugLevel
        : logger.IsEnabled(LogLevel.Information) ? Akka.Event.LogLevel.InfoLevel
        : Akka.Event.LogLevel.WarningLevel;

    private static string Seconds(TimeSpan span) => $"{span.TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture)}ms";

    /// <summary>Where the member listens, and, with a certificate, TLS with mutual authentication (Akka's default).</summary>
    private static RemoteOptions RemotingOf(MembershipOptions options)
    {
        var remoting = new RemoteOptions
        {
            HostName = options.RemotingHost,
            Port = options.RemotingPort,
            PublicHostName = options.PublicHostname,
        };
        if (options.Tls.Enabled)
        {
            remoting.EnableSsl = true;
            remoting.Ssl = new SslOptions
            {
                X509Certificate = options.Tls.LoadCertificate(),
                SuppressValidation = false,
                RequireMutualAuthentication = true,
                CustomValidator = options.Tls.TrustedThumbprints.Length > 0 ? Akka.Remote.Transport.DotNetty.CertificateValidation.PinnedCertificate(options.Tls.TrustedThumbprints) : null,
            };
        }

        return remoting;
    }

    private static AkkaConfigurationBuilder WithMembership(this AkkaConfigurationBuilder builder, MembershipOptions options, ClusterMembership membership, NodeIdentity node) =>
        builder
            .WithRemoting(RemotingOf(options))
            .WithClustering(new Akka.Cluster.Hosting.ClusterOptions
            {
                SeedNodes = options.SeedNodes,

                // What shard placement hashes (RendezvousAllocation): the node id, stable across restarts, not the address.
                Roles = [RendezvousAllocation.RoleOf(node.Id)],
            })
            .WithCustomSerializer("clusterqueue", ClusterMessageSerializer.Messages, system => new ClusterMessageSerializer(system))
            .AddStartup((system, _) => membership.Start(system, joinedByAkka: !options.JoinsItself()));
}
