using Akka.Actor;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// How the actor system's top-level actors, the group actors, are supervised: one that fails is stopped, never
/// restarted in place. A restart would make a new actor from the same start (a full bucket, in a loop that failed);
/// a stopped one saves its tokens with the dispatcher, and the group's next wake-up makes a new actor from them. The
/// actor logs its own failure (with the group's id), so Akka's copy of it is off.
/// </summary>
public sealed class GroupActorSupervision : SupervisorStrategyConfigurator
{
    public override SupervisorStrategy Create() => new OneForOneStrategy(_ => Directive.Stop, loggingEnabled: false);
}
