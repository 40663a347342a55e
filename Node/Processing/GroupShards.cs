using System.Globalization;
using Akka.Actor;
using Akka.Cluster.Sharding;
using ClusterQueue.Node.Cluster;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Group actors as Akka.Cluster.Sharding entities: entity id = group id, shard = <see cref="ShardMap.ShardOf"/> over the
/// node's shard count (a stable hash, the same on every member and every run). Whatever a member sends a group goes
/// through the region as a <see cref="GroupEnvelope"/>, and the region delivers it on the member that holds the
/// group's shard, starting the actor there if it has none.
/// </summary>
public static class GroupShards
{
    /// <summary>The region's type name; part of every shard lease's name (<c>clusterqueue-shard-groups-{shard}</c>).</summary>
    public const string TypeName = "groups";

    /// <summary>
    /// Starts this member's region, set up by the actor system's akka.cluster.sharding settings (ActorsSetup); its
    /// entities are <see cref="GroupActor"/>s made from the dispatcher's parts.
    /// </summary>
    public static async Task<IActorRef> StartAsync(ActorSystem system, GroupDispatcher dispatcher, Func<IReadOnlySet<string>?>? lapsedNodes = null)
    {
        var sharding = ClusterSharding.Get(system);
        var settings = ClusterShardingSettings.Create(system);
        var region = await sharding.StartAsync(
            TypeName,
            dispatcher.EntityProps,
            settings,
            new GroupMessageExtractor(dispatcher.Ownership.Shards),
            new RendezvousAllocation(dispatcher.Ownership.Shards, lapsedNodes),

            // Sent to every entity of a shard that moves away: lease nothing more, finish the calls in flight (bounded).
            GroupProtocol.Stop.Instance);
        var stateStore = GroupStateStore.SnapshotStore(system);
        dispatcher.Attach(region, stateStore);
        _ = dispatcher.AwaitPlacementAsync(system, region);
        if (dispatcher.Ownership.IsClustered)
        {
            // Only a cluster hands groups over to another member, whose actors wait for the saves of the leaving one's.
            _ = GroupStateStore.WarmUpAsync(stateStore);
        }
        return region;
    }
}

/// <summary>A message for one group's actor, wherever its shard lives.</summary>
public sealed record GroupEnvelope(string GroupId, object Message);

/// <summary>Reads the group id and its shard from a <see cref="GroupEnvelope"/>.</summary>
internal sealed class GroupMessageExtractor(int shards) : IMessageExtractor
{
    public string? EntityId(object message) => message switch
    {
        GroupEnvelope envelope => envelope.GroupId,
        _ => null,
    };

    public object? EntityMessage(object message) => message switch
    {
        GroupEnvelope envelope => envelope.Message,
        _ => message,
    };

    public string ShardId(object message) => message switch
    {
        GroupEnvelope envelope => ShardId(envelope.GroupId),
        _ => throw new ArgumentException($"{message.GetType().Name} is not a message for a group actor.", nameof(message)),
    };

    public string ShardId(string entityId, object? messageHint = null) => ShardId(entityId);

    private string ShardId(string groupId) => ShardMap.ShardOf(groupId, shards).ToString(CultureInfo.InvariantCulture);
}
