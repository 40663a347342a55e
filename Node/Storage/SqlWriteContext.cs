using System.Data;
using System.Data.Common;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// What a write operation sees: a writer connection with its open transaction. Where the provider allows it
/// (<paramref name="cacheCommands"/>), commands are cached by their SQL text so each statement is prepared once for the
/// life of the connection; Npgsql binds a reused command to its first parameter objects, so there each call gets a new
/// command and Npgsql's own automatic preparation (by SQL text, per connection) does the caching. Counter changes are
/// collected here and written by the database once per batch (see <see cref="SqlDatabase"/>).
/// </summary>
public sealed class SqlWriteContext(DbConnection connection, bool cacheCommands, int counterSlot = 0, bool transactionObjects = false) : IDisposable
{
    private DbTransaction? _transaction;

    private readonly Dictionary<string, DbCommand> _commands = new(StringComparer.Ordinal);
    private readonly List<DbCommand> _transient = [];
    private readonly Dictionary<string, CounterChange> _operationCounters = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, CounterChange> _batchCounters = new(StringComparer.Ordinal);

    /// <summary>A cached command for <paramref name="sql"/> with its parameters cleared.</summary>
    public DbCommand Command(string sql)
    {
        if (!cacheCommands)
        {
            var fresh = connection.CreateCommand();
            fresh.CommandText = sql;
            _transient.Add(fresh);
            return fresh;
        }

        if (!_commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            _commands[sql] = command;
        }

        command.Parameters.Clear();
        return command;
    }

    public int Execute(string sql) => Command(sql).ExecuteNonQuery();

    /// <summary>
    /// Opens the batch's transaction. With <c>transactionObjects</c> (Npgsql) it is the provider's transaction, whose
    /// BEGIN travels with the first statement instead of costing a round trip of its own; otherwise
    /// <paramref name="beginSql"/> runs as a statement (SQLite's BEGIN IMMEDIATE, which the provider's object would
    /// also require on every command).
    /// </summary>
    internal void Begin(string beginSql)
    {
        if (transactionObjects)
        {
            _transaction = connection.BeginTransaction();
        }
        else
        {
            Execute(beginSql);
        }
    }

    internal void Commit()
    {
        if (!transactionObjects)
        {
            Execute("COMMIT;");
            return;
        }

        using var transaction = _transaction ?? throw new InvalidOperationException("No transaction is open.");
        _transaction = null;
        transaction.Commit();
    }

    internal void Rollback()
    {
        if (!transactionObjects)
        {
            Execute("ROLLBACK;");
            return;
        }

        // Nothing is open after a commit that failed: the server ended that transaction.
        using var transaction = _transaction;
        _transaction = null;
        transaction?.Rollback();
    }

    /// <summary>The writer's connection, for what only its provider can tell (see <see cref="SqlDatabase"/>).</summary>
    internal DbConnection Connection => connection;

    /// <summary>False once the server or the network dropped the connection.</summary>
    internal bool IsOpen => connection.State == ConnectionState.Open;

    /// <summary>Adds <paramref name="change"/> to the group's counters, committed with this operation (or not at all).</summary>
    public void Count(string groupId, CounterChange change) =>
        _operationCounters[groupId] = _operationCounters.TryGetValue(groupId, out var pending) ? pending + change : change;

    internal void KeepCounters()
    {
        foreach (var (group, change) in _operationCounters)
        {
            _batchCounters[group] = _batchCounters.TryGetValue(group, out var pending) ? pending + change : change;
        }

        _operationCounters.Clear();
    }

    internal void DropCounters() => _operationCounters.Clear();

    /// <summary>Disposes the batch's uncached commands.</summary>
    internal void EndBatch()
    {
        foreach (var command in _transient)
        {
            command.Dispose();
        }

        _transient.Clear();
    }

    internal void ForgetCounters() => _batchCounters.Clear();

    /// <summary>
    /// Writes the batch's counter changes into this writer's slot row of each group, in group-id order. A group that
    /// no longer exists gets no row; a slot row appears the first time its writer counts for the group.
    /// </summary>
    internal void FlushCounters()
    {
        foreach (var (group, change) in _batchCounters)
        {
            var update = Command("""
                INSERT INTO group_counters (group_id, slot, ingested, delivered, failed, dead, throttled)
                SELECT @group, @slot, @ingested, @delivered, @failed, @dead, @throttled
                WHERE EXISTS (SELECT 1 FROM groups WHERE id = @group)
                ON CONFLICT (group_id, slot) DO UPDATE SET ingested = group_counters.ingested + excluded.ingested,
                    delivered = group_counters.delivered + excluded.delivered, failed = group_counters.failed + excluded.failed,
                    dead = group_counters.dead + excluded.dead, throttled = group_counters.throttled + excluded.throttled;
                """);
            update.Add("@group", group);
            update.Add("@slot", counterSlot);
            update.Add("@ingested", (long)change.Ingested);
            update.Add("@delivered", (long)change.Delivered);
            update.Add("@failed", (long)change.Failed);
            update.Add("@dead", (long)change.Dead);
            update.Add("@throttled", (long)change.Throttled);
            update.ExecuteNonQuery();
        }

        _batchCounters.Clear();
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values)
        {
            command.Dispose();
        }

        _commands.Clear();
        EndBatch();
        _transaction?.Dispose();
        connection.Dispose();
    }
}

/// <summary>A change to a group's durable totals.</summary>
public readonly record struct CounterChange(int Ingested = 0, int Delivered = 0, int Failed = 0, int Dead = 0, int Throttled = 0)
{
    public static CounterChange Ingest => new(Ingested: 1);

    /// <summary>An ingest taken back (the SQS queue refused the message), as if the request never came.</summary>
    public static CounterChange Unreserve => new(Ingested: -1);

    public static CounterChange Delivery => new(Delivered: 1);

    public static CounterChange Failure => new(Failed: 1);

    public static CounterChange Death => new(Failed: 1, Dead: 1);

    public static CounterChange Throttle => new(Throttled: 1);

    public static CounterChange operator +(CounterChange a, CounterChange b) =>
        new(a.Ingested + b.Ingested, a.Delivered + b.Delivered, a.Failed + b.Failed, a.Dead + b.Dead, a.Throttled + b.Throttled);
}

/// <summary>Parameters that bind the same way on SQLite and PostgreSQL.</summary>
public static class DbCommandParameters
{
    /// <summary>
    /// Adds a named parameter. A null needs its <paramref name="type"/>: PostgreSQL cannot infer the type of an untyped
    /// null in every position (<c>@p IS NULL</c>, a select list), SQLite ignores it.
    /// </summary>
    public static DbParameter Add(this DbCommand command, string name, object? value, DbType? type = null)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        if (type is { } dbType)
        {
            parameter.DbType = dbType;
        }

        command.Parameters.Add(parameter);
        return parameter;
    }

    public static DbParameter AddText(this DbCommand command, string name, string? value) => command.Add(name, value, DbType.String);

    public static DbParameter AddBytes(this DbCommand command, string name, byte[]? value) => command.Add(name, value, DbType.Binary);
}
