using System.Net.Sockets;
using ClusterQueue.Node.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ClusterQueue.Tests.Storage;

/// <summary>Which database errors take the store out of service (503 and not ready) and which stay one operation's own.</summary>
public sealed class StoreFaultsTests
{
    [Theory]
    [InlineData(5, "database is locked")] // SQLITE_BUSY
    [InlineData(8, "attempt to write a readonly database")] // SQLITE_READONLY
    [InlineData(10, "disk I/O error")] // SQLITE_IOERR
    [InlineData(13, "database or disk is full")] // SQLITE_FULL
    [InlineData(14, "unable to open database file")] // SQLITE_CANTOPEN
    [InlineData(13 | (1 << 8), "extended code of SQLITE_FULL")]
    public void SqliteErrorThatWaitingHeals_IsAWriteFault(int code, string message)
    {
        Assert.True(StoreFaults.IsWriteFault(new SqliteException(message, code)));
    }

    [Theory]
    [InlineData(19, "UNIQUE constraint failed")] // SQLITE_CONSTRAINT: the operation's own
    [InlineData(1, "no such table")] // SQLITE_ERROR: a bug
    [InlineData(11, "database disk image is malformed")] // SQLITE_CORRUPT: waiting never heals it
    public void SqliteErrorOfTheOperationOrBeyondWaiting_IsNotAWriteFault(int code, string message)
    {
        Assert.False(StoreFaults.IsWriteFault(new SqliteException(message, code)));
    }

    [Theory]
    [InlineData("53100")] // disk_full
    [InlineData("53200")] // out_of_memory
    [InlineData("53300")] // too_many_connections
    [InlineData("58030")] // io_error
    [InlineData("25006")] // read_only_sql_transaction: a standby after failover
    [InlineData("57P03")] // cannot_connect_now
    [InlineData("08006")] // connection_failure
    public void PostgresResourceOrConnectionError_IsAWriteFault(string state)
    {
        Assert.True(StoreFaults.IsWriteFault(Postgres(state)));
    }

    [Theory]
    [InlineData("40001")] // serialization_failure
    [InlineData("40P01")] // deadlock_detected
    public void PostgresTransactionConflict_IsRetryableButNotAWriteFault(string state)
    {
        Assert.False(StoreFaults.IsWriteFault(Postgres(state)));
        Assert.True(StoreFaults.IsRetryable(Postgres(state)));
    }

    [Fact]
    public void PostgresConstraintViolation_IsNeither()
    {
        Assert.False(StoreFaults.IsWriteFault(Postgres("23505")));
        Assert.False(StoreFaults.IsRetryable(Postgres("23505")));
    }

    [Fact]
    public void UnreachableServer_IsAWriteFault()
    {
        var refused = new NpgsqlException("Failed to connect to 127.0.0.1:1", new SocketException((int)SocketError.ConnectionRefused));

        Assert.True(StoreFaults.IsWriteFault(refused));
    }

    [Fact]
    public void FaultWrappedByAnotherException_IsStillAWriteFault()
    {
        var wrapped = new InvalidOperationException("outer", new SqliteException("database or disk is full", 13));

        Assert.True(StoreFaults.IsWriteFault(wrapped));
    }

    [Fact]
    public void ClientHangingUp_IsNotAWriteFault()
    {
        Assert.False(StoreFaults.IsWriteFault(new IOException("The client reset the request stream.")));
    }

    private static PostgresException Postgres(string state) => new("test", "ERROR", "ERROR", state);
}
