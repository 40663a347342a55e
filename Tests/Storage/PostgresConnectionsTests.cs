using ClusterQueue.Tests.Support;
using Npgsql;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// The store's connections as the server sees them: only the group states' and the shard coordinator's commits skip
/// waiting for the disk; the messages' and the leases' wait, since their ordering is what makes the others safe.
/// </summary>
public sealed class PostgresConnectionsTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task GroupStatesAndCoordinatorCommitAsynchronously_MessagesAndLeasesDoNot()
    {
        // The tests' server commits asynchronously by default; the connection string asks for synchronous commits, as
        // a production server's default is, and for a setting of the user's own, which every connection keeps.
        var configured = new NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync()) { Options = "-c synchronous_commit=on -c statement_timeout=60000" };
        await using var database = await server.OpenStoreAsync(configured.ConnectionString);

        Assert.Equal(("off", "1min"), await SettingsAsync(database.PersistenceConnection.ConnectionString));
        Assert.Equal(("off", "1min"), await SettingsAsync(database.CoordinatorConnection.ConnectionString));
        await using (var lease = await database.ClusterSource.OpenConnectionAsync())
        {
            Assert.Equal(("on", "1min"), await SettingsAsync(lease));
        }

        await using var read = (NpgsqlConnection)await database.OpenReadAsync(CancellationToken.None);
        Assert.Equal(("on", "1min"), await SettingsAsync(read));
    }

    private static async Task<(string SynchronousCommit, string StatementTimeout)> SettingsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return await SettingsAsync(connection);
    }

    private static async Task<(string, string)> SettingsAsync(NpgsqlConnection connection)
    {
        await using var show = new NpgsqlCommand("SELECT current_setting('synchronous_commit'), current_setting('statement_timeout');", connection);
        await using var reader = await show.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetString(0), reader.GetString(1));
    }
}
