using System.Data.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The store's database, SQLite or PostgreSQL. Every write goes through writer loops that each own one connection and
/// commit whatever operations are waiting in a single transaction (group commit): a burst of concurrent ingest
/// requests costs one commit, not one each. A failing operation is rolled back alone and the rest of the batch still
/// commits (see CommitBatch). The group counters an operation changes are applied
/// once per batch, in group-id order, just before the commit: hot counter rows are locked for one short moment and
/// always in the same order, so two writers (or two nodes) never deadlock on them.
/// A database can also make commits durable apart from the writers (<see cref="SyncsApart"/>): a writer then commits
/// without waiting for the disk and goes on to the next batch while a sync thread flushes every commit made so far in
/// one go; an operation is acknowledged only once a flush that began after its commit has finished. The disk's flush
/// and the next batch's statements overlap instead of taking turns.
/// A write that fails with a store fault (<see cref="StoreFaults"/>: disk full, I/O error, database unreachable) fails
/// its caller with <see cref="StoreUnavailableException"/> and is reported to <see cref="Health"/>; a kept write reports
/// that the store works again.
/// </summary>
public abstract class SqlDatabase : IAsyncDisposable
{
    private readonly HandoffQueue<WriteOperation> _writes = new();
    private readonly HandoffQueue<WriteOperation> _committed = new();
    private readonly List<Thread> _writerThreads = [];
    private Thread? _syncThread;
    private readonly int _maxBatch;
    private readonly ILogger _logger;

    /// <param name="health">The node's; a database opened on its own (a tool, a test) keeps one of its own.</param>
    protected SqlDatabase(int maxBatch, ILogger logger, StoreHealth? health)
    {
        _maxBatch = maxBatch;
        _logger = logger;
        Health = health ?? new StoreHealth(TimeProvider.System, NullLogger<StoreHealth>.Instance);
    }

    /// <summary>Whether writes are being kept; told of every store fault and every kept write.</summary>
    public StoreHealth Health { get; }

    /// <summary>SQL that yields the strings of a JSON array parameter as rows of one column named <c>value</c>.</summary>
    public abstract string JsonStrings(string parameter);

    /// <summary>The clause that makes a select for update skip rows another transaction holds (empty where one writer is all there is).</summary>
    public abstract string SkipLocked { get; }

    /// <summary>How Akka.Persistence.Sql reaches this store (<see cref="Processing.GroupStateStore"/>): a connection string and a linq2db provider name.</summary>
    public abstract (string ConnectionString, string Provider) PersistenceConnection { get; }

    /// <summary>A statement that tells other nodes, at commit, that group definitions changed; null where there are no other nodes.</summary>
    public virtual string? GroupsChangedNotification => null;

    /// <summary>
    /// A statement (with one parameter, <c>@outcome_id</c>) that tells other nodes, at commit, that a message someone
    /// waits for has its outcome; null where there are no other nodes (the node's own waiters hear it directly).
    /// </summary>
    public virtual string? OutcomeNotification => null;

    /// <summary>A statement that holds writers recording group changes to one at a time until commit; null with a single writer.</summary>
    public virtual string? ChangeOrderLock => null;

    /// <summary>Runs <paramref name="work"/> on a writer connection inside a transaction; completes once it is committed and durable.</summary>
    public Task<T> WriteAsync<T>(Func<SqlWriteContext, T> work, CancellationToken cancellationToken = default) =>
        WriteAsync(work, WriteAcknowledgement.WhenDurable, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> in a transaction; with <see cref="WriteAcknowledgement.WhenCommitted"/> it completes
    /// as soon as the commit is visible to other connections, before the disk has it. For writes whose loss in a power
    /// failure only repeats work (a lease, an ack of a delivered message), never for what a caller is promised is kept.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqlWriteContext, T> work, WriteAcknowledgement acknowledgement, CancellationToken cancellationToken = default) =>
        Submit(new WriteOperation<T>(work, acknowledgement == WriteAcknowledgement.WhenDurable), cancellationToken);

    /// <summary>
    /// Runs <paramref name="write"/> for <paramref name="item"/>; every item of the same write waiting in one batch runs
    /// in a single call, so its rows can go in one statement. Completes once committed and durable.
    /// </summary>
    public Task<TResult> WriteAsync<TItem, TResult>(SharedWrite<TItem, TResult> write, TItem item, CancellationToken cancellationToken = default) =>
        Submit(new SharedOperation<TItem, TResult>(write, item), cancellationToken);

    private Task<T> Submit<T>(WriteOperationWithResult<T> operation, CancellationToken cancellationToken)
    {
        if (!_writes.TryAdd(operation))
        {
            throw new ObjectDisposedException(GetType().Name);
        }

        return cancellationToken.CanBeCanceled ? operation.Task.WaitAsync(cancellationToken) : operation.Task;
    }

    /// <summary>A pooled, open read connection; dispose it to return it.</summary>
    public abstract DbConnection OpenRead();

    /// <summary>
    /// <see cref="OpenRead"/> for a loop that must stop when told: PostgreSQL opens a new connection without blocking a
    /// thread, and gives up when cancelled instead of after its connect timeout.
    /// </summary>
    public virtual ValueTask<DbConnection> OpenReadAsync(CancellationToken cancellationToken) => ValueTask.FromResult(OpenRead());

    /// <summary>A new open connection for a writer loop.</summary>
    protected abstract DbConnection OpenWriter();

    /// <summary>Starts <paramref name="count"/> writer loops; called by the subclass once its schema is in place.</summary>
    protected void StartWriters(int count, string name)
    {
        // Before the writers: a writer hands its commits to the sync thread only once that thread exists.
        if (SyncsApart && _syncThread is null)
        {
            _syncThread = new Thread(RunSync) { IsBackground = true, Name = $"{name}-sync" };
            _syncThread.Start();
        }

        // Consecutive slots from a random start: this node's writers never share one, another node's rarely do.
        var firstSlot = Random.Shared.Next(CounterSlots);
        for (var i = 0; i < count; i++)
        {
            var connection = OpenWriter();
            var slot = (firstSlot + i) % CounterSlots;

            // A thread of its own: every commit blocks on a flush, which must not hold a thread-pool thread that requests need.
            var thread = new Thread(() => RunWriter(connection, slot)) { IsBackground = true, Name = $"{name}-writer-{i}" };
            _writerThreads.Add(thread);
            thread.Start();
        }
    }

    /// <summary>Whether commits return before they are durable and <see cref="SyncCommits"/> makes them so.</summary>
    protected virtual bool SyncsApart => false;

    /// <summary>Makes every commit made so far durable; called on the sync thread only.</summary>
    protected virtual void SyncCommits()
    {
    }

    /// <summary>Flushes whatever was committed since the last flush, then acknowledges it, until the writers are done.</summary>
    private void RunSync()
    {
        var committed = new List<WriteOperation>();
        while (_committed.Take(committed, int.MaxValue))
        {
            try
            {
                SyncCommits();
            }
            catch (Exception ex)
            {
                // The commits are visible but may not be on disk: nobody is told they are kept, so senders retry. A flush
                // that fails is the store's fault whatever the error, so callers hear that the store is unavailable.
                Log.SyncFailed(_logger, committed.Count, ex);
                var unavailable = ex as StoreUnavailableException ?? new StoreUnavailableException($"Flushing the store's commits to disk failed: {ex.Message}", ex);
                Health.WriteFailed(unavailable);
                foreach (var operation in committed)
                {
                    operation.Fail(unavailable);
                }

                committed.Clear();
                continue;
            }

            foreach (var operation in committed)
            {
                operation.Complete();
            }

            Health.WriteKept();
            committed.Clear();
        }
    }

    /// <summary>How many slot rows a group's counters may spread over (see <see cref="SqlWriteContext.FlushCounters"/>).</summary>
    protected virtual int CounterSlots => 1;

    /// <summary>Whether a writer may reuse one command object per SQL text (see <see cref="SqlWriteContext"/>).</summary>
    protected virtual bool CacheCommands => true;

    /// <summary>How a transaction opens: SQLite takes its write lock up front so a batch never fails half-way on a busy lock.</summary>
    protected virtual string BeginTransaction => "BEGIN;";

    /// <summary>Whether the writer's connection still has a transaction open; false once the database ended it on its own.</summary>
    protected virtual bool InTransaction(SqlWriteContext context) => true;

    /// <summary>Whether a batch's transaction is the provider's object rather than BEGIN/COMMIT statements (see <see cref="SqlWriteContext.Begin"/>).</summary>
    protected virtual bool TransactionObjects => false;

    private void RunWriter(DbConnection first, int counterSlot)
    {
        SqlWriteContext? context = new(first, CacheCommands, counterSlot, TransactionObjects);
        var batch = new List<WriteOperation>(_maxBatch);
        while (_writes.Take(batch, _maxBatch))
        {
            context = Reconnected(context, batch, counterSlot);
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
    private SqlWriteContext? Reconnected(SqlWriteContext? context, List<WriteOperation> batch, int counterSlot)
    {
        if (context is { IsOpen: true })
        {
            return context;
        }

        context?.Dispose();
        try
        {
            Log.WriterReconnecting(_logger, null);
            return new SqlWriteContext(OpenWriter(), CacheCommands, counterSlot, TransactionObjects);
        }
        catch (Exception ex)
        {
            var failure = Failure(ex);
            foreach (var operation in batch)
            {
                operation.Fail(failure);
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
        foreach (var operation in batch)
        {
            operation.Ran = false;
        }

        try
        {
            context.Begin(BeginTransaction);
            for (var i = 0; i < batch.Count; i++)
            {
                var operation = batch[i];
                if (operation.Ran)
                {
                    continue;
                }

                try
                {
                    operation.Run(context, batch, i);
                    context.KeepCounters();
                }
                catch (Exception ex) when (batch.Count > 1 && context.IsOpen && !StoreFaults.IsWriteFault(ex))
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
                catch (Exception ex) when (context.IsOpen && !StoreFaults.IsWriteFault(ex))
                {
                    // The one operation of this transaction failed on its own: it alone is told so.
                    context.DropCounters();
                    TryRollback(context);
                    operation.Fail(ex);
                    return;
                }
            }

            context.FlushCounters();
            context.Commit();
        }
        catch (Exception ex)
        {
            // The commit itself failed, or the store refused a statement (disk full, I/O error, connection lost): nothing
            // in the batch is durable, so nobody is told it is. Running the operations again one by one would only meet
            // the same fault once per operation.
            var failure = Failure(ex);
            if (failure is not StoreUnavailableException)
            {
                Log.CommitFailed(_logger, batch.Count, ex);
            }

            context.DropCounters();
            context.ForgetCounters();
            TryRollback(context);
            foreach (var operation in batch)
            {
                operation.Fail(failure);
            }

            return;
        }

        if (_syncThread is null)
        {
            Health.WriteKept();
        }

        Acknowledge(batch);
    }

    /// <summary>What the callers of a failed write are told: a store fault is reported and becomes <see cref="StoreUnavailableException"/>.</summary>
    private Exception Failure(Exception exception)
    {
        if (!StoreFaults.IsWriteFault(exception))
        {
            return exception;
        }

        var unavailable = exception as StoreUnavailableException ?? new StoreUnavailableException($"The store refused the write: {exception.Message}", exception);
        Health.WriteFailed(unavailable);
        return unavailable;
    }

    /// <summary>Completes what a commit made durable; what still waits for the disk goes to the sync thread.</summary>
    private void Acknowledge(List<WriteOperation> batch)
    {
        foreach (var operation in batch)
        {
            if (_syncThread is null || !operation.AwaitsDisk)
            {
                operation.Complete();
            }
        }

        if (_syncThread is not null)
        {
            _committed.AddRange(batch.Where(operation => operation.AwaitsDisk));
        }
    }

    private void TryRollback(SqlWriteContext context)
    {
        try
        {
            if (!InTransaction(context))
            {
                // The database rolled the transaction back itself (SQLite does on a full disk or an I/O error).
                return;
            }

            context.Rollback();
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

    /// <summary>
    /// How long stopping waits for the writers to finish what they were given. A commit takes milliseconds; a writer
    /// still busy after this is waiting on a store it cannot reach (a frozen network, a dead server), where a statement
    /// can hang for a minute or more, and a node that must go (a downed member) would hang with it.
    /// </summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private Task? _stopping;

    public virtual async ValueTask DisposeAsync()
    {
        // Disposed once for each service it is registered as: the second waits for the first, not for another deadline.
        Task stopping;
        lock (_writerThreads)
        {
            stopping = _stopping ??= StopWritersAsync();
        }

        await stopping.ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    private async Task StopWritersAsync()
    {
        _writes.Complete();
        var deadline = Task.Delay(StopTimeout);
        var writersStopped = true;
        foreach (var thread in _writerThreads)
        {
            writersStopped &= await JoinAsync(thread, deadline).ConfigureAwait(false);
        }

        // A writer left behind may still commit and hand its commit to the sync thread, which must then take it.
        if (writersStopped)
        {
            _committed.Complete();
            if (_syncThread is { } sync)
            {
                await JoinAsync(sync, deadline).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Waits for the thread until the deadline; false when it is still running then. It is left behind (the threads are
    /// background ones, so the process still exits), and its operations' callers are never answered: nothing it held
    /// was acknowledged.
    /// </summary>
    private async Task<bool> JoinAsync(Thread thread, Task deadline)
    {
        var joined = Task.Run(thread.Join);
        if (await Task.WhenAny(joined, deadline).ConfigureAwait(false) == joined)
        {
            return true;
        }

        Log.WriterAbandoned(_logger, StopTimeout);
        return false;
    }

    /// <summary>
    /// Operations on their way to a writer or to the sync thread, which sleep here when there are none. Waiting on a
    /// task instead (a channel's WaitToReadAsync) spins before it blocks, and on a small machine that spinning took CPU
    /// from the requests the writers serve.
    /// </summary>
    private sealed class HandoffQueue<T>
    {
        private readonly Queue<T> _waiting = new();
        private bool _completed;
        private int _sleepers;

        /// <summary>Adds every item at once; the sync queue is completed only after the last writer has stopped.</summary>
        public void AddRange(IEnumerable<T> items)
        {
            lock (_waiting)
            {
                if (_completed)
                {
                    throw new InvalidOperationException("The queue is completed.");
                }

                foreach (var item in items)
                {
                    _waiting.Enqueue(item);
                }

                if (_waiting.Count > 0 && _sleepers > 0)
                {
                    Monitor.Pulse(_waiting);
                }
            }
        }

        public bool TryAdd(T operation)
        {
            lock (_waiting)
            {
                if (_completed)
                {
                    return false;
                }

                _waiting.Enqueue(operation);
                if (_sleepers > 0)
                {
                    Monitor.Pulse(_waiting);
                }

                return true;
            }
        }

        /// <summary>Moves up to <paramref name="max"/> operations into <paramref name="batch"/>, sleeping until there is one; false once completed and empty.</summary>
        public bool Take(List<T> batch, int max)
        {
            lock (_waiting)
            {
                while (_waiting.Count == 0)
                {
                    if (_completed)
                    {
                        return false;
                    }

                    _sleepers++;
                    Monitor.Wait(_waiting);
                    _sleepers--;
                }

                while (batch.Count < max && _waiting.TryDequeue(out var operation))
                {
                    batch.Add(operation);
                }

                // Another writer (PostgreSQL has several) can take what this batch left.
                if (_waiting.Count > 0 && _sleepers > 0)
                {
                    Monitor.Pulse(_waiting);
                }

                return true;
            }
        }

        public void Complete()
        {
            lock (_waiting)
            {
                _completed = true;
                Monitor.PulseAll(_waiting);
            }
        }
    }

    private abstract class WriteOperation(bool awaitsDisk)
    {
        public bool AwaitsDisk { get; } = awaitsDisk;

        /// <summary>Set once the operation's work has run in the current transaction (a shared write runs several at once).</summary>
        public bool Ran { get; set; }

        /// <summary>Runs this operation, the <paramref name="index"/>th of <paramref name="batch"/>, and marks what ran.</summary>
        public abstract void Run(SqlWriteContext context, List<WriteOperation> batch, int index);
        public abstract void Complete();
        public abstract void Fail(Exception exception);
    }

    /// <summary>An operation whose caller waits for a result: set when its work runs, handed over once the batch is kept.</summary>
    private abstract class WriteOperationWithResult<T>(bool awaitsDisk) : WriteOperation(awaitsDisk)
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private bool _failed;

        public Task<T> Task => _completion.Task;

        protected void Keep(T result)
        {
            _result = result;
            Ran = true;
        }

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

    private sealed class WriteOperation<T>(Func<SqlWriteContext, T> work, bool awaitsDisk) : WriteOperationWithResult<T>(awaitsDisk)
    {
        public override void Run(SqlWriteContext context, List<WriteOperation> batch, int index) => Keep(work(context));
    }

    private sealed class SharedOperation<TItem, TResult>(SharedWrite<TItem, TResult> write, TItem item) : WriteOperationWithResult<TResult>(awaitsDisk: true)
    {
        private readonly SharedWrite<TItem, TResult> _write = write;
        private readonly TItem _item = item;

        /// <summary>Runs this item with every later one of the same write in the batch that has not run yet.</summary>
        public override void Run(SqlWriteContext context, List<WriteOperation> batch, int index)
        {
            var together = new List<SharedOperation<TItem, TResult>>();
            for (var i = index; i < batch.Count; i++)
            {
                if (batch[i] is SharedOperation<TItem, TResult> { Ran: false } other && ReferenceEquals(other._write, _write))
                {
                    together.Add(other);
                }
            }

            var results = _write.Run(context, together.ConvertAll(operation => operation._item));
            if (results.Count != together.Count)
            {
                throw new InvalidOperationException($"A shared write returned {results.Count} results for {together.Count} items.");
            }

            for (var i = 0; i < together.Count; i++)
            {
                together[i].Keep(results[i]);
            }
        }
    }
}

/// <summary>
/// A write that many concurrent callers make, run for all of a batch's callers in one call (see
/// <see cref="SqlDatabase.WriteAsync{TItem, TResult}(SharedWrite{TItem, TResult}, TItem, CancellationToken)"/>).
/// <paramref name="run"/> returns one result per item, in order. The items of one batch were all waiting at once, so
/// running them together, before or after the batch's other operations, is an order they could have arrived in.
/// </summary>
public sealed class SharedWrite<TItem, TResult>(Func<SqlWriteContext, IReadOnlyList<TItem>, IReadOnlyList<TResult>> run)
{
    internal IReadOnlyList<TResult> Run(SqlWriteContext context, IReadOnlyList<TItem> items) => run(context, items);
}

/// <summary>When a write's task completes.</summary>
public enum WriteAcknowledgement
{
    /// <summary>Once the commit is on disk: what was promised to a caller.</summary>
    WhenDurable,

    /// <summary>Once the commit is visible, perhaps before it is on disk: work that a power failure would only repeat.</summary>
    WhenCommitted,
}
