using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Where a cluster's shard coordinator keeps which member holds which shard: Akka.Persistence.Sql's journal and
/// snapshots on the cluster's PostgreSQL database (Akka.Cluster.Sharding's <c>state-store-mode = persistence</c>), in
/// tables the store's migrations make. With Akka's default, Distributed Data, each of the coordinator's steps is
/// written to every member before the next, and when a member leaves with many shards the coordinator deallocates all
/// of them before it places any (docs/cluster.md, "Limits"): on a shared two-core machine a leave with 57 shards took
/// 1.2–1.7 s p50. With the journal a step is one commit, and each shard is placed as soon as it is released. A node on
/// the SQLite store is a cluster of one and keeps Distributed Data, which then writes nowhere but its own memory.
/// </summary>
public static class CoordinatorState
{
    /// <summary>The plugins' name: <c>akka.persistence.journal.shard-coordinator</c> and <c>akka.persistence.snapshot-store.shard-coordinator</c>.</summary>
    public const string PluginName = "shard-coordinator";

    public const string JournalTable = "shard_coordinator_journal";
    public const string TagTable = "shard_coordinator_tags";
    public const string SnapshotTable = "shard_coordinator_snapshots";

    /// <summary>The coordinator's persistence id for the entity type <paramref name="typeName"/>, as Akka.Cluster.Sharding names it.</summary>
    public static string PersistenceIdOf(string typeName) => $"/system/sharding/{typeName}Coordinator/singleton/coordinator";

    /// <summary>The sharding settings that put the coordinator's state in the plugins below.</summary>
    public static readonly Config Settings = ConfigurationFactory.ParseString($$"""
        akka.cluster.sharding {
          state-store-mode = persistence
          journal-plugin-id = "akka.persistence.journal.{{PluginName}}"
          snapshot-plugin-id = "akka.persistence.snapshot-store.{{PluginName}}"
        }
        """);

    /// <summary>Adds the coordinator's journal and snapshot store, on the database reached by <paramref name="connection"/>, beside the default ones.</summary>
    public static AkkaConfigurationBuilder WithCoordinatorState(this AkkaConfigurationBuilder builder, (string ConnectionString, string Provider) connection) =>
        builder
            .WithSqlPersistence(JournalOptions(connection), PersistenceTables.Snapshots(connection, SnapshotTable, PluginName))
            .AddHocon(Settings, HoconAddMode.Prepend);

    private static SqlJournalOptions JournalOptions((string ConnectionString, string Provider) connection)
    {
        var journal = JournalTableOptions.Default;
        journal.TableName = JournalTable;
        var tags = TagTableOptions.Default;
        tags.TableName = TagTable;
        return new SqlJournalOptions(isDefaultPlugin: false, PluginName)
        {
            ConnectionString = connection.ConnectionString,
            ProviderName = connection.Provider,
            AutoInitialize = false,
            TagStorageMode = TagMode.TagTable,
            DeleteCompatibilityMode = false,
            DatabaseOptions = new JournalDatabaseOptions(DatabaseMapping.Default) { JournalTable = journal, TagTable = tags },
        };
    }
}
