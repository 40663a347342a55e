using Akka.Actor;
using Akka.Configuration;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// An actor system set up as the node's is (<see cref="ActorsSetup.Settings"/>), as a one-member cluster on loopback:
/// what a group dispatcher needs for its shard region.
/// </summary>
internal static class ShardedSystem
{
    /// <summary>The node's settings plus cluster membership on a free loopback port.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString(
        """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        akka.cluster.sharding.handoff-timeout = 30s
        """).WithFallback(ActorsSetup.Settings);

    /// <summary>
    /// The settings plus the node's snapshot store for group states (Akka.Persistence.Sql) on the SQLite store file at
    /// <paramref name="storePath"/>, whose migrations make its table.
    /// </summary>
    public static Config SettingsOn(string storePath)
    {
        var snapshots = GroupStateStore.SnapshotOptions(SqliteDatabase.PersistenceConnectionOf(storePath));
        return snapshots.ToConfig().WithFallback(snapshots.DefaultConfig).WithFallback(Settings);
    }

    public static ActorSystem Create(string name, string storePath) => ActorSystem.Create(name, SettingsOn(storePath));

    /// <summary>Joins the system to itself, waits until it is Up and starts the dispatcher's region on it.</summary>
    public static async Task StartShardsAsync(ActorSystem system, GroupDispatcher dispatcher)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        cluster.Join(cluster.SelfAddress);
        await up.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await GroupShards.StartAsync(system, dispatcher);
    }
}
