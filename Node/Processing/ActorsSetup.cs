using Akka.Configuration;
using Akka.Hosting;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// The node's one actor system (Akka.NET, through Akka.Hosting), started and stopped with the host. Its settings are
/// code, not a HOCON file for users to edit. No remoting yet, so no serializer is chosen yet: every message stays in
/// this process.
/// </summary>
public static class ActorsSetup
{
    public const string SystemName = "clusterqueue";

    /// <summary>What the node sets beyond Akka's defaults; tests build their actor systems from it too.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString(
        $$"""
        akka {
          # Nothing of the node times itself on Akka's scheduler (group actors use TimeProvider timers: at the 10 ms
          # default tick a scheduled message came 8 ms late at p50, a TimeProvider timer 2 ms). The scheduler's wheel
          # starts with the first thing scheduled on it (CoordinatedShutdown, at the latest) and then wakes every tick
          # for good: 6.8% of a core at 10 ms, 1.3% at 100 ms on this project's machines.
          scheduler.tick-duration = 100ms

          # A failed group actor stops and leaves its tokens; restarting it in place would start it with a full bucket.
          actor.guardian-supervisor-strategy = "{{typeof(GroupActorSupervision).AssemblyQualifiedName}}"

          # Akka would run its shutdown on SIGTERM by itself, at once, stopping every group actor with its calls in
          # flight. The host runs it instead, after the dispatcher's drain (AkkaHostedService.StopAsync).
          coordinated-shutdown.run-by-clr-shutdown-hook = off

          # Timer ticks and slot offers for actors that have just stopped are expected then.
          log-dead-letters-during-shutdown = off
        }
        """);

    /// <summary>Adds the actor system; its hosted service starts before the dispatcher's and stops after its drain.</summary>
    public static IServiceCollection AddActors(this IServiceCollection services) =>
        services.AddAkka(SystemName, (builder, _) => builder
            .AddHocon(Settings, HoconAddMode.Prepend)
            .ConfigureLoggers(loggers =>
            {
                // Akka's own messages go to the node's log, filtered there like any other category.
                loggers.LogLevel = Akka.Event.LogLevel.WarningLevel;
                loggers.ClearLoggers();
                loggers.AddLoggerFactory();
            }));
}
