using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The embedded database. SQLite allows one writer at a time, so every write goes through one loop that owns one
/// connection and commits whatever operations are waiting in a single transaction (group commit): a burst of
/// concurrent ingest requests costs one fsync, not one each. Each operation runs inside its own savepoint, so one
/// failing operation is rolled back alone and the rest of the batch still commits. Reads use pooled connections,
/// which WAL lets run beside the writer.
/// </summary>
public sealed class SqliteDatabase : IAsyncDisposable
{
    private readonly Channel<WriteOperation> _writes = Channel.CreateUnbounded<WriteOperation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _connectionString;
    private readonly SqliteOptions _options;
    private readonly ILogger<SqliteDatabase> _logger;
    private readonly Thread _writerThread;
    private readonly SqliteConnection _writer;

    public SqliteDatabase(IOptions<StorageOptions> options, ILogger<SqliteDatabase> logger)
    {
        _options = options.Value.Sqlite;
        _logger = logger;
        var path = System.IO.Path.GetFullPath(_options.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        _writer = new SqliteConnection(_connectionString);
        _writer.Open();
        Execute(_writer, "PRAGMA journal_mode = WAL;");
        Execute(_writer, $"PRAGMA synchronous = {_options.Synchronous.ToUpperInvariant()};");
        Execute(_writer, "PRAGMA busy_timeout = 30000;");
        SqliteSchema.Apply(_writer);
        Log.Opened(_logger, path, _options.Synchronous);

        // A thread of its own: every commit blocks on fsync, which must not hold a thread-pool thread that requests need.
        _writerThread = new Thread(RunWriter) { IsBackground = true, Name = "clusterqueue-sqlite-writer" };
        _writerThread.Start();
    }

    /// <summary>Runs <paramref name="work"/> on the writer connection inside a transaction; completes once it is committed.</summary>
    public Task<T> WriteAsync<T>(Func<SqliteWriteContext, T> work, CancellationToken cancellationToken = default)
    {
        var operation = new WriteOperation<T>(work);
        if (!_writes.Writer.TryWrite(operation))
        {
            throw new ObjectDisposedException(nameof(SqliteDatabase));
        }

        return cancellationToken.CanBeCanceled ? operation.Task.WaitAsync(cancellationToken) : operation.Task;
    }

    /// <summary>A pooled read connection; dispose it to return it.</summary>
    public SqliteConnection OpenRead()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private void RunWriter()
    {
        var context = new SqliteWriteContext(_writer);
        var batch = new List<WriteOperation>(_options.MaxBatch);
        while (_writes.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (batch.Count < _options.MaxBatch && _writes.Reader.TryRead(out var operation))
            {
                batch.Add(operation);
            }

            CommitBatch(context, batch);
            batch.Clear();
        }
    }

    private void CommitBatch(SqliteWriteContext context, List<WriteOperation> batch)
    {
        try
        {
            context.Execute("BEGIN IMMEDIATE;");
            foreach (var operation in batch)
            {
                context.Execute("SAVEPOINT op;");
                try
                {
                    operation.Run(context);
                    context.Execute("RELEASE op;");
                }
                catch (Exception ex)
                {
                    context.Execute("ROLLBACK TO op;");
                    context.Execute("RELEASE op;");
                    operation.Fail(ex);
                }
            }

            context.Execute("COMMIT;");
        }
        catch (Exception ex)
        {
            // The commit itself failed (disk full, I/O error): nothing in the batch is durable, so nobody is told it is.
            Log.CommitFailed(_logger, batch.Count, ex);
            TryRollback(context);
            foreach (var operation in batch)
            {
                operation.Fail(ex);
            }

            return;
        }

        foreach (var operation in batch)
        {
            operation.Complete();
        }
    }

    private void TryRollback(SqliteWriteContext context)
    {
        try
        {
            context.Execute("ROLLBACK;");
        }
        catch (SqliteException ex)
        {
            Log.RollbackFailed(_logger, ex);
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public async ValueTask DisposeAsync()
    {
        _writes.Writer.TryComplete();
        await Task.Run(_writerThread.Join).ConfigureAwait(false);
        _writer.Dispose();

        // Only this database's pool: other databases in the same process (tests) keep theirs.
        using var pooled = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(pooled);
    }

    private abstract class WriteOperation
    {
        public abstract void Run(SqliteWriteContext context);
        public abstract void Complete();
        public abstract void Fail(Exception exception);
    }

    private sealed class WriteOperation<T>(Func<SqliteWriteContext, T> work) : WriteOperation
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private bool _failed;

        public Task<T> Task => _completion.Task;

        public override void Run(SqliteWriteContext context) => _result = work(context);

        public override void Complete()
        {
            if (!_failed)
            {
                _completion.TrySetResult(_result!);
            }
        }

        public override void Fail(Exception exception)
        {
            _failed = true;
            _completion.TrySetException(exception);
        }
    }
}
