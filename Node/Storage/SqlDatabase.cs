using System.Data.Common;
using System.Threading.Channels;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The store's database, SQLite or PostgreSQL. Every write goes through writer loops that each own one connection and
/// commit whatever operations are waiting in a single transaction (group commit): a burst of concurrent ingest
/// requests costs one commit, not one each. A failing operation is rolled back alone and the rest of the batch still
/// commits (see CommitBatch). The group counters an operation changes are applied
/// once per batch, in group-id order, just before the commit: hot counter rows are locked for one short moment and
/// always in the same order, so two writers (or two nodes) never deadlock on them.
/// </summary>
public abstract class SqlDatabase : IAsyncDisposable
{
    private readonly Channel<WriteOperation> _writes = Channel.CreateUnbounded<WriteOperation>();
    private readonly List<Thread> _writerThreads = [];
    private readonly int _maxBatch;
    private readonly ILogger _logger;

    protected SqlDatabase(int maxBatch, ILogger logger)
    {
        _maxBatch = maxBatch;
        _logger = logger;
    }

    /// <summary>SQL that yields the strings of a JSON array parameter as rows of one column named <c>value</c>.</summary>
    public abstract string JsonStrings(string parameter);

    /// <summary>The clause that makes a select for update skip rows another transaction holds (empty where one writer is all there is).</summary>
    public abstract string SkipLocked { get; }

    /// <summary>A statement that tells other nodes, at commit, that group definitions changed; null where there are no other nodes.</summary>
    public virtual string? GroupsChangedNotification => null;

    /// <summary>Runs <paramref name="work"/> on a writer connection inside a transaction; completes once it is committed.</summary>
    public Task<T> WriteAsync<T>(Func<SqlWriteContext, T> work, CancellationToken cancellationToken = default)
    {
        var operation = new WriteOperation<T>(work);
        if (!_writes.Writer.TryWrite(operation))
        {
            throw new ObjectDisposedException(GetType().Name);
        }

        return cancellationToken.CanBeCanceled ? operation.Task.WaitAsync(cancellationToken) : operation.Task;
    }

    /// <summary>A pooled, open read connection; dispose it to return it.</summary>
    public abstract DbConnection OpenRead();

    /// <summary>A new open connection for a writer loop.</summary>
    protected abstract DbConnection OpenWriter();

    /// <summary>Starts <paramref name="count"/> writer loops; called by the subclass once its schema is in place.</summary>
    protected void StartWriters(int count, string name)
    {
        for (var i = 0; i < count; i++)
        {
            var connection = OpenWriter();

            // A thread of its own: every commit blocks on a flush, which must not hold a thread-pool thread that requests need.
            var thread = new Thread(() => RunWriter(connection)) { IsBackground = true, Name = $"{name}-writer-{i}" };
            _writerThreads.Add(thread);
            thread.Start();
        }
    }

    /// <summary>Whether a writer may reuse one command object per SQL text (see <see cref="SqlWriteContext"/>).</summary>
    protected virtual bool CacheCommands => true;

    /// <summary>How a transaction opens: SQLite takes its write lock up front so a batch never fails half-way on a busy lock.</summary>
    protected virtual string BeginTransaction => "BEGIN;";

    private void RunWriter(DbConnection first)
    {
        SqlWriteContext? context = new(first, CacheCommands);
        var batch = new List<WriteOperation>(_maxBatch);
        while (_writes.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (batch.Count < _maxBatch && _writes.Reader.TryRead(out var operation))
            {
                batch.Add(operation);
            }

            if (batch.Count == 0)
            {
                continue;
            }

            context = Reconnected(context, batch);
            if (context is not null)
            {
                CommitBatch(context, batch);
                context.EndBatch();
            }

            batch.Clear();
        }

        context?.Dispose();
    }

    /// <summary>
    /// The writer's context on a working connection: a connection the server dropped is replaced. When no new one can
    /// be opened (the database is unreachable), the batch fails with that error and the next batch tries again.
    /// </summary>
    private SqlWriteContext? Reconnected(SqlWriteContext? context, List<WriteOperation> batch)
    {
        if (context is { IsOpen: true })
        {
            return context;
        }

        context?.Dispose();
        try
        {
            Log.WriterReconnecting(_logger, null);
            return new SqlWriteContext(OpenWriter(), CacheCommands);
        }
        catch (Exception ex)
        {
            foreach (var operation in batch)
            {
                operation.Fail(ex);
            }

            return null;
        }
    }

    /// <summary>
    /// Commits the batch in one transaction. Operations rarely fail (expected outcomes are values, not exceptions), so
    /// the batch runs without savepoints, which would cost two more round trips per operation on PostgreSQL; when one
    /// does fail, the batch is rolled back and each operation runs again in a transaction of its own, so the failing
    /// one fails alone and the others still commit.
    /// </summary>
    private void CommitBatch(SqlWriteContext context, List<WriteOperation> batch)
    {
        try
        {
            context.Execute(BeginTransaction);
            foreach (var operation in batch)
            {
                try
                {
                    operation.Run(context);
                    context.KeepCounters();
                }
                catch (Exception) when (batch.Count > 1 && context.IsOpen)
                {
                    context.DropCounters();
                    context.ForgetCounters();
                    TryRollback(context);
                    foreach (var single in batch)
                    {
                        CommitBatch(context, [single]);
                    }

                    return;
                }
                catch (Exception ex) when (context.IsOpen)
                {
                    // The one operation of this transaction failed on its own: it alone is told so.
                    context.DropCounters();
                    TryRollback(context);
                    operation.Fail(ex);
                    return;
                }
            }

            context.FlushCounters();
            context.Execute("COMMIT;");
        }
        catch (Exception ex)
        {
            // The commit itself failed (disk full, I/O error, connection lost): nothing in the batch is durable, so nobody is told it is.
            Log.CommitFailed(_logger, batch.Count, ex);
            context.DropCounters();
            context.ForgetCounters();
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

    private void TryRollback(SqlWriteContext context)
    {
        try
        {
            context.Execute("ROLLBACK;");
        }
        catch (DbException ex)
        {
            Log.RollbackFailed(_logger, ex);
        }
        catch (InvalidOperationException ex)
        {
            // The connection is broken; the server rolls the transaction back when it notices.
            Log.RollbackFailed(_logger, ex);
        }
    }

    public virtual async ValueTask DisposeAsync()
    {
        _writes.Writer.TryComplete();
        foreach (var thread in _writerThreads)
        {
            await Task.Run(thread.Join).ConfigureAwait(false);
        }

        GC.SuppressFinalize(this);
    }

    private abstract class WriteOperation
    {
        public abstract void Run(SqlWriteContext context);
        public abstract void Complete();
        public abstract void Fail(Exception exception);
    }

    private sealed class WriteOperation<T>(Func<SqlWriteContext, T> work) : WriteOperation
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private bool _failed;

        public Task<T> Task => _completion.Task;

        public override void Run(SqlWriteContext context) => _result = work(context);

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
