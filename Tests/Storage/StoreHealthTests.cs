using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// The store's health as the writer loops see it, against a real PostgreSQL behind a relay that can be cut: a write the
/// database cannot take fails as <see cref="StoreUnavailableException"/> (503 upstream) and marks the store unwritable,
/// the next kept write marks it writable again, and an operation's own error marks nothing.
/// </summary>
public sealed class StoreHealthTests(PostgresServer server) : IClassFixture<PostgresServer>, IAsyncLifetime
{
    private TcpRelay? _relay;
    private PostgresDatabase? _database;

    private PostgresDatabase Database => _database!;

    [Fact]
    public async Task WriteWhileDatabaseUnreachable_FailsAsStoreUnavailable_AndTheNextKeptWriteHealsIt()
    {
        await Database.WriteAsync(context => Insert(context, "before"));
        Assert.True(Database.Health.IsWritable);

        _relay!.Cut();
        var failed = await Assert.ThrowsAsync<StoreUnavailableException>(() => Database.WriteAsync(context => Insert(context, "during")));

        Assert.False(Database.Health.IsWritable, $"still writable after {failed.InnerException?.GetType().Name}: {failed.Message}");
        var failing = Database.Health.FailingAsync(CancellationToken.None);
        Assert.True(failing.IsCompleted, "FailingAsync did not complete while writes fail");

        _relay.Restore();
        await Eventually.ReadAsync(
            async () =>
            {
                try
                {
                    await Database.WriteAsync(context => Insert(context, "after"));
                    return true;
                }
                catch (StoreUnavailableException)
                {
                    return false;
                }
            },
            kept => kept,
            "a write kept once the database is back",
            TimeSpan.FromSeconds(30));

        Assert.True(Database.Health.IsWritable);
        Assert.False(Database.Health.FailingAsync(CancellationToken.None).IsCompleted);
    }

    [Fact]
    public async Task OperationThatTheDatabaseRefuses_FailsWithItsOwnError_AndLeavesTheStoreWritable()
    {
        await Database.WriteAsync(context => Insert(context, "taken"));

        var duplicate = await Assert.ThrowsAsync<PostgresException>(() => Database.WriteAsync(context => Insert(context, "taken")));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, duplicate.SqlState);
        Assert.True(Database.Health.IsWritable);
    }

    private static int Insert(SqlWriteContext context, string id)
    {
        var insert = context.Command("INSERT INTO groups (id, definition, created_at, updated_at) VALUES (@id, '{}', 0, 0);");
        insert.Add("@id", id);
        return insert.ExecuteNonQuery();
    }

    public async Task InitializeAsync()
    {
        var connection = new NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync());
        _relay = new TcpRelay(new Uri($"tcp://{connection.Host}:{connection.Port}"));
        connection.Host = "127.0.0.1";
        connection.Port = _relay.Port;

        // A cut connection is noticed at once; a short open timeout keeps the reconnect attempts during the cut short.
        connection.Timeout = 3;
        var options = new StorageOptions { Store = "postgres", Postgres = new PostgresOptions { ConnectionString = connection.ConnectionString, Writers = 1 } };
        _database = new PostgresDatabase(Options.Create(options), NullLogger<PostgresDatabase>.Instance);
    }

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        if (_relay is not null)
        {
            await _relay.DisposeAsync();
        }
    }
}
