using System.Data.Common;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The embedded store. SQLite allows one writer at a time, so there is one writer loop; reads use pooled connections,
/// which WAL lets run beside the writer.
/// With <c>Synchronous=Full</c> the writer commits at SQLite's NORMAL level (the WAL is written, not flushed) and the
/// sync thread flushes the WAL file with fsync before any of those commits is acknowledged: the same promise as
/// SQLite's FULL, which fsyncs the WAL at every commit, but the single writer no longer waits for the disk between
/// batches. The WAL file lives as long as the writer's connection (SQLite deletes it only when the last connection
/// closes), so the handle opened on it after the first commit names the file SQLite writes to.
/// A flush that fails leaves it unknown which of the WAL's pages reached the disk, and Linux reports a failed write-back
/// once: the next fdatasync can succeed although the pages that failed never will, and a WAL with a hole loses every
/// later frame when it is recovered. So after a failed flush nothing more is acknowledged until a checkpoint has copied
/// the whole WAL into the database file, synced that file, and started the WAL afresh.
/// </summary>
public sealed class SqliteDatabase : SqlDatabase
{
    private readonly string _connectionString;
    private readonly SqliteOptions _options;
    private readonly string _path;
    private readonly string _walPath;
    private readonly bool _syncsApart;
    private SafeFileHandle? _wal;

    // Set by a failed flush, cleared by a checkpoint that took in the whole WAL; only the sync thread touches it.
    private bool _flushFailed;

    public SqliteDatabase(IOptions<StorageOptions> options, ILogger<SqliteDatabase> logger, StoreHealth? health = null)
        : base(options.Value.Sqlite.MaxBatch, logger, health)
    {
        _options = options.Value.Sqlite;
        var path = System.IO.Path.GetFullPath(_options.Path);
        _path = path;
        _walPath = path + "-wal";
        _syncsApart = string.Equals(_options.Synchronous, "Full", StringComparison.OrdinalIgnoreCase);
        SqliteFiles.Prepare(path, logger);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        using (var connection = (SqliteConnection)OpenWriter())
        {
            // The migration commits on its own connection, so it is flushed by SQLite itself.
            Execute(connection, $"PRAGMA synchronous = {_options.Synchronous.ToUpperInvariant()};");
            SqliteSchema.Apply(connection);
        }

        Log.SqliteOpened(logger, path, _options.Synchronous);
        StartWriters(1, "clusterqueue-sqlite");
    }

    public override string JsonStrings(string parameter) => $"json_each({parameter})";

    public override string SkipLocked => string.Empty;

    // Its own pool on the same file: the group states' few writes wait for the writer loop's lock (busy timeout), and
    // commit at SQLite's default FULL level by themselves.
    public override (string ConnectionString, string Provider) PersistenceConnection => PersistenceConnectionOf(_path);

    /// <summary>What <see cref="PersistenceConnection"/> is for the store file at <paramref name="path"/>.</summary>
    public static (string ConnectionString, string Provider) PersistenceConnectionOf(string path) =>
        (new SqliteConnectionStringBuilder
        {
            DataSource = System.IO.Path.GetFullPath(path),
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString(), LinqToDB.ProviderName.SQLiteMS);

    protected override string BeginTransaction => "BEGIN IMMEDIATE;";

    protected override bool SyncsApart => _syncsApart;

    // SQLite may end a transaction itself on SQLITE_FULL or SQLITE_IOERR; a ROLLBACK then only fails again.
    protected override bool InTransaction(SqlWriteContext context) =>
        SQLitePCL.raw.sqlite3_get_autocommit(((SqliteConnection)context.Connection).Handle) == 0;

    protected override void SyncCommits()
    {
        if (_flushFailed)
        {
            CheckpointWholeLog();
            _flushFailed = false;
            return;
        }

        try
        {
            FlushLog();
        }
        catch
        {
            _flushFailed = true;
            throw;
        }
    }

    private void FlushLog()
    {
        // Opened at the first flush: by then the writer has committed, so the WAL exists and is the one it writes.
        _wal ??= File.OpenHandle(_walPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        if (!OperatingSystem.IsLinux())
        {
            RandomAccess.FlushToDisk(_wal);
            return;
        }

        // fdatasync, as SQLite itself syncs its WAL on Linux: the file's contents and size, not its times. .NET's flush is
        // fsync, which also writes the modification time, so on ext4 every flush waited for a journal commit besides
        // the data: at low load, where each message has a flush of its own, that was most of an acknowledgement's time.
        if (fdatasync((int)_wal.DangerousGetHandle()) != 0)
        {
            throw new IOException($"fdatasync of {_walPath} failed: errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    /// <summary>
    /// Copies every frame of the WAL into the database file, syncs it and truncates the WAL, or throws: afterwards no
    /// commit made so far depends on a WAL page that may not have reached the disk.
    /// </summary>
    private void CheckpointWholeLog()
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();

        // FULL makes the checkpoint sync the database file once the frames are in it; the busy timeout lets it wait for
        // the writer's current batch and for readers still on the old frames.
        Execute(connection, "PRAGMA synchronous = FULL;");
        Execute(connection, "PRAGMA busy_timeout = 5000;");
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        using var reader = command.ExecuteReader();
        if (!reader.Read() || reader.GetInt64(0) != 0)
        {
            throw new IOException($"After a failed flush of {_walPath}, the checkpoint that makes its commits durable could not finish (busy); it is tried again at the next flush.");
        }
    }

    // DllImport rather than LibraryImport: one int in, one int out needs no marshalling, and no unsafe code in the project.
    [DllImport("libc", SetLastError = true)]
#pragma warning disable SYSLIB1054
    private static extern int fdatasync(int fd);
#pragma warning restore SYSLIB1054

    public override DbConnection OpenRead()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    protected override DbConnection OpenWriter()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA journal_mode = WAL;");
        Execute(connection, $"PRAGMA synchronous = {(_syncsApart ? "NORMAL" : _options.Synchronous.ToUpperInvariant())};");
        Execute(connection, "PRAGMA busy_timeout = 30000;");
        Execute(connection, "PRAGMA cache_size = -65536;");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _wal?.Dispose();

        // Only this database's pool: other databases in the same process (tests) keep theirs.
        using var pooled = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(pooled);
    }
}
