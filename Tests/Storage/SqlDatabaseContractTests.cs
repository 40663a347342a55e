using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Queueing;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// What the writer loops promise on both databases: operations share commits, and one that fails is rolled back alone
/// while the others in its batch still commit, counters included.
/// </summary>
public abstract class SqlDatabaseContractTests : IAsyncLifetime
{
    private SqlDatabase? _database;

    protected abstract Task<SqlDatabase> OpenAsync();

    private SqlDatabase Database => _database ?? throw new InvalidOperationException("Not initialised.");

    [Fact]
    public async Task OperationThatThrows_FailsAlone_TheOthersInItsBatchCommit()
    {
        var writes = Enumerable.Range(0, 50).Select(i => Database.WriteAsync(context =>
        {
            Insert(context, $"g{i}");
            context.Count($"g{i}", CounterChange.Ingest);
            if (i % 10 == 3)
            {
                throw new InvalidOperationException($"operation {i} refuses");
            }

            return i;
        })).ToList();

        await Task.WhenAll(writes).ContinueWith(_ => { }, TaskScheduler.Default);

        var failed = writes.Where(w => w.IsFaulted).ToList();
        Assert.Equal(5, failed.Count);
        Assert.All(failed, w => Assert.IsType<InvalidOperationException>(w.Exception!.InnerException));
        Assert.Equal(45, writes.Count(w => w.IsCompletedSuccessfully));
        var stored = Groups();
        Assert.Equal(45, stored.Count);
        Assert.DoesNotContain("g3", stored.Keys);
        Assert.DoesNotContain("g13", stored.Keys);
        Assert.All(stored.Values, ingested => Assert.Equal(1, ingested));
    }

    [Fact]
    public async Task OperationTheDatabaseRefuses_FailsAlone_AndTheWriterGoesOn()
    {
        await Database.WriteAsync(context => Insert(context, "taken"));

        var duplicate = Database.WriteAsync(context => Insert(context, "taken"));
        var fresh = Database.WriteAsync(context => Insert(context, "fresh"));
        await Task.WhenAll(duplicate, fresh).ContinueWith(_ => { }, TaskScheduler.Default);
        var later = await Database.WriteAsync(context => Insert(context, "later"));

        Assert.True(duplicate.IsFaulted, "a second row with the same key was accepted");
        Assert.True(fresh.IsCompletedSuccessfully);
        Assert.Equal(1, later);
        Assert.Equal(["fresh", "later", "taken"], Groups().Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task SharedWrite_RunsTheWaitingItemsTogether_AndAnswersEachCallerWithItsOwnResult()
    {
        var calls = new List<int>();
        var write = new SharedWrite<string, string>((context, ids) =>
        {
            lock (calls)
            {
                calls.Add(ids.Count);
            }

            foreach (var id in ids)
            {
                Insert(context, id);
                context.Count(id, CounterChange.Ingest);
            }

            return ids.Select(id => $"stored {id}").ToList();
        });

        var writes = Enumerable.Range(0, 200).Select(i => Database.WriteAsync(write, $"g{i}")).ToList();
        var results = await Task.WhenAll(writes);

        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"stored g{i}"), results);
        Assert.Equal(200, calls.Sum());
        Assert.True(calls.Count < 200, "no two waiting items ever ran in one call");
        var stored = Groups();
        Assert.Equal(200, stored.Count);
        Assert.All(stored.Values, ingested => Assert.Equal(1, ingested));
    }

    [Fact]
    public async Task SharedWrite_ThatFailsForOneItem_FailsThatCallerAlone()
    {
        var write = new SharedWrite<string, int>((context, ids) =>
        {
            if (ids.Contains("bad"))
            {
                throw new InvalidOperationException("one item refuses");
            }

            return ids.Select(id => Insert(context, id)).ToList();
        });

        var writes = new[] { "a", "b", "bad", "c" }.Select(id => Database.WriteAsync(write, id)).ToList();
        await Task.WhenAll(writes).ContinueWith(_ => { }, TaskScheduler.Default);

        Assert.True(writes[2].IsFaulted);
        Assert.All(writes.Where((_, i) => i != 2), w => Assert.True(w.IsCompletedSuccessfully));
        Assert.Equal(["a", "b", "c"], Groups().Keys.Order(StringComparer.Ordinal));
    }

    private static int Insert(SqlWriteContext context, string id)
    {
        var group = context.Command("INSERT INTO groups (id, definition, created_at, updated_at) VALUES (@id, '{}', 0, 0);");
        group.Add("@id", id);
        group.ExecuteNonQuery();
        var counters = context.Command("INSERT INTO group_counters (group_id) VALUES (@id);");
        counters.Add("@id", id);
        return counters.ExecuteNonQuery();
    }

    private Dictionary<string, long> Groups()
    {
        using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT g.id, CAST(coalesce(sum(c.ingested), 0) AS bigint)
            FROM groups g LEFT JOIN group_counters c ON c.group_id = g.id GROUP BY g.id;
            """;
        using var reader = command.ExecuteReader();
        var groups = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.Read())
        {
            groups[reader.GetString(0)] = reader.GetInt64(1);
        }

        return groups;
    }

    public async Task InitializeAsync() => _database = await OpenAsync();

    public virtual async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}

public sealed class SqliteDatabaseTests : SqlDatabaseContractTests
{
    private readonly TempDirectory _directory = new();

    protected override Task<SqlDatabase> OpenAsync() => Task.FromResult<SqlDatabase>(new SqliteDatabase(
        Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File("store.db") } }),
        NullLogger<SqliteDatabase>.Instance));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}

public sealed class PostgresDatabaseTests(PostgresServer server) : SqlDatabaseContractTests, IClassFixture<PostgresServer>
{
    protected override async Task<SqlDatabase> OpenAsync() => await PostgresMessageQueueTests.OpenAsync(server);
}
