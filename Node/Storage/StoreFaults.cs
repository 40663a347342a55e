using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// Which database errors mean the store itself cannot take writes now, as opposed to one operation being wrong. These
/// are the faults that answer 503 with Retry-After and take the node out of readiness until a write succeeds again;
/// any other error stays the operation's own.
/// </summary>
public static class StoreFaults
{
    // SQLite primary result codes (https://sqlite.org/rescode.html). Each can heal without a restart: space freed, a
    // disk or mount back, a lock released, the file made writable again. Corruption (11, 26) is left out: waiting never
    // heals it, so it stays a 500 for an operator to see.
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteReadOnly = 8;
    private const int SqliteIoError = 10;
    private const int SqliteFull = 13;
    private const int SqliteCantOpen = 14;
    private const int SqliteProtocol = 15;

    /// <summary>True when <paramref name="exception"/> (or one it wraps) says the store refuses writes as a whole.</summary>
    public static bool IsWriteFault(Exception exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case StoreUnavailableException:
                    return true;
                case SqliteException sqlite when (sqlite.SqliteErrorCode & 0xFF) is SqliteBusy or SqliteLocked or SqliteReadOnly
                    or SqliteIoError or SqliteFull or SqliteCantOpen or SqliteProtocol:
                    return true;
                case PostgresException postgres:
                    return IsPostgresStoreFault(postgres.SqlState);
                case NpgsqlException { IsTransient: true }:
                    // No server answer at all: the connection could not be opened or broke (network, server down).
                    return true;
            }
        }

        return false;
    }

    /// <summary>True for a store fault or any error the provider calls transient (a deadlock, a serialization failure): worth a retry, so 503.</summary>
    public static bool IsRetryable(Exception exception) =>
        IsWriteFault(exception) || exception is DbException { IsTransient: true };

    // PostgreSQL error codes (https://www.postgresql.org/docs/current/errcodes-appendix.html): class 53, insufficient
    // resources (53100 disk_full, 53200 out_of_memory, 53300 too_many_connections); class 08, connection exceptions;
    // 57P01-57P03, the server shutting down or starting; 58030 io_error; 25006 read_only_sql_transaction, a database
    // that became a standby after a failover. Deadlocks and serialization failures (40xxx) are one transaction's bad
    // luck, not the store's health: they are retryable but leave readiness alone.
    private static bool IsPostgresStoreFault(string state) =>
        state.StartsWith("53", StringComparison.Ordinal)
        || state.StartsWith("08", StringComparison.Ordinal)
        || state is "57P01" or "57P02" or "57P03" or "58030" or "25006";
}
