using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Queueing;

/// <summary>The queue contract against the PostgreSQL store: a real server, a database of its own per test.</summary>
public sealed class PostgresMessageQueueTests(PostgresServer server) : SqlMessageQueueContractTests, IClassFixture<PostgresServer>, IAsyncLifetime
{
    private PostgresDatabase? _database;
    private FakeTimeProvider? _time;

    protected override async Task<IMessageQueue> CreateQueueAsync(FakeTimeProvider time)
    {
        if (_database is not null)
        {
            throw new InvalidOperationException("Each test creates one queue.");
        }

        _database = await OpenAsync(server);
        _time = time;
        return new SqlMessageQueue(_database, time);
    }

    /// <summary>A store on a fresh database of <paramref name="server"/>.</summary>
    public static async Task<PostgresDatabase> OpenAsync(PostgresServer server)
    {
        var options = new StorageOptions { Store = "postgres", Postgres = new PostgresOptions { ConnectionString = await server.CreateDatabaseAsync(), Writers = 2 } };
        return new PostgresDatabase(Options.Create(options), NullLogger<PostgresDatabase>.Instance);
    }

    protected override Task DefineGroupAsync(string groupId) => DefineInStoreAsync(_database, _time, groupId);

    protected override long AttemptHistoryRows() => CountAttemptRows(_database);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
