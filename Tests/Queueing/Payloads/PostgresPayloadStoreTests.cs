using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Queueing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Payloads;

/// <summary>The payload store contract against the PostgreSQL store: a real server, a database of its own per test.</summary>
public sealed class PostgresPayloadStoreTests(PostgresServer server) : PayloadStoreContractTests, IClassFixture<PostgresServer>, IAsyncLifetime
{
    private PostgresDatabase? _database;

    protected override async Task<IPayloadStore> CreateStoreAsync()
    {
        if (_database is not null)
        {
            throw new InvalidOperationException("Each test creates one store.");
        }

        _database = await PostgresMessageQueueTests.OpenAsync(server);
        return new SqlPayloadStore(_database);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
