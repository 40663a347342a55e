using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Storage;

/// <summary>A node must be able to stop while its database does not answer: its writers are waited for, within a bound.</summary>
public sealed class StoreStopTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task WriterStuckOnAFrozenLink_StoppingGivesUpOnItAfterItsTimeout_AndTheWriteIsNeverAcknowledged()
    {
        var target = new Npgsql.NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync());
        await using var relay = new TcpRelay(new Uri($"tcp://{target.Host}:{target.Port}"));
        target.Port = relay.Port;
        var options = new StorageOptions { Store = "postgres", Postgres = new PostgresOptions { ConnectionString = target.ConnectionString, Writers = 1 } };
        var database = new PostgresDatabase(Options.Create(options), NullLogger<PostgresDatabase>.Instance);
        await database.WriteAsync(context => context.Execute("SELECT 1;"));

        // Nothing answers and no error comes: the writer waits on its statement far longer than a node may take to stop.
        relay.Freeze();
        var stuck = database.WriteAsync(context => context.Execute("SELECT 1;"));
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await database.DisposeAsync().AsTask().WaitAsync(SqlDatabase.StopTimeout + TimeSpan.FromSeconds(10));

        Assert.InRange(stopping.Elapsed, SqlDatabase.StopTimeout - TimeSpan.FromSeconds(1), SqlDatabase.StopTimeout + TimeSpan.FromSeconds(10));
        Assert.False(stuck.IsCompletedSuccessfully);

        // Disposed again (it is registered as two services): at once, not after another timeout.
        var again = System.Diagnostics.Stopwatch.StartNew();
        await database.DisposeAsync();
        Assert.True(again.Elapsed < TimeSpan.FromSeconds(5), $"the second disposal took {again.Elapsed}");
    }
}
