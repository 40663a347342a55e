using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Queueing;

/// <summary>The queue contract against the embedded store: a real SQLite file of its own per test.</summary>
public sealed class SqliteMessageQueueTests : SqlMessageQueueContractTests, IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private SqliteDatabase? _database;
    private FakeTimeProvider? _time;

    protected override Task<IMessageQueue> CreateQueueAsync(FakeTimeProvider time)
    {
        if (_database is not null)
        {
            throw new InvalidOperationException("Each test creates one queue.");
        }

        var options = new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File("queue.db") } };
        _database = new SqliteDatabase(Options.Create(options), NullLogger<SqliteDatabase>.Instance);
        _time = time;
        return Task.FromResult<IMessageQueue>(new SqlMessageQueue(_database, time));
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

        _directory.Dispose();
    }
}
