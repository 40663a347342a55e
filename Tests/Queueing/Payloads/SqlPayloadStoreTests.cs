using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Queueing.Payloads;

/// <summary>The payload store contract against this node's database: a real SQLite file of its own per test.</summary>
public sealed class SqlPayloadStoreTests : PayloadStoreContractTests, IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private SqliteDatabase? _database;

    protected override Task<IPayloadStore> CreateStoreAsync()
    {
        if (_database is not null)
        {
            throw new InvalidOperationException("Each test creates one store.");
        }

        _database = Open();
        return Task.FromResult<IPayloadStore>(new SqlPayloadStore(_database));
    }

    [Fact]
    public async Task Put_IsInTheFileOnReturn_SoTheDatabaseOpenedAgainReturnsIt()
    {
        var store = await CreateStoreAsync();
        var id = Guid.NewGuid().ToString();
        var body = new byte[70_000];
        Random.Shared.NextBytes(body);

        await store.PutAsync("orders", id, body, CancellationToken.None);
        await _database!.DisposeAsync();
        _database = Open();

        Assert.Equal(body, await new SqlPayloadStore(_database).GetAsync("orders", id, CancellationToken.None));
    }

    private SqliteDatabase Open()
    {
        var options = new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File("payloads.db") } };
        return new SqliteDatabase(Options.Create(options), NullLogger<SqliteDatabase>.Instance);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        _directory.Dispose();
    }
}
