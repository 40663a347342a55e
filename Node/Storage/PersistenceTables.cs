using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// Akka.Persistence.Sql plugins on tables the store's own migrations make (SqliteSchema, PostgresSchema), in the
/// plugin's default column names: never created by the plugin, which would race other nodes to do it.
/// </summary>
public static class PersistenceTables
{
    /// <summary>
    /// A snapshot store on <paramref name="table"/>, reached by <paramref name="connection"/>: the actor system's default
    /// one when <paramref name="pluginName"/> is null, else <c>akka.persistence.snapshot-store.{pluginName}</c>.
    /// </summary>
    public static SqlSnapshotOptions Snapshots((string ConnectionString, string Provider) connection, string table, string? pluginName = null)
    {
        var tableOptions = SnapshotTableOptions.Default;
        tableOptions.TableName = table;
        var options = pluginName is null ? new SqlSnapshotOptions(isDefaultPlugin: true) : new SqlSnapshotOptions(isDefaultPlugin: false, pluginName);
        options.ConnectionString = connection.ConnectionString;
        options.ProviderName = connection.Provider;
        options.AutoInitialize = false;
        options.DatabaseOptions = new SnapshotDatabaseOptions(DatabaseMapping.Default) { SnapshotTable = tableOptions };
        return options;
    }
}
