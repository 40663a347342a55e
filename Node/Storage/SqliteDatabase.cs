using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The embedded store. SQLite allows one writer at a time, so there is one writer loop; reads use pooled connections,
/// which WAL lets run beside the writer.
/// </summary>
public sealed class SqliteDatabase : SqlDatabase
{
    private readonly string _connectionString;
    private readonly SqliteOptions _options;

    public SqliteDatabase(IOptions<StorageOptions> options, ILogger<SqliteDatabase> logger)
        : base(options.Value.Sqlite.MaxBatch, logger)
    {
        _options = options.Value.Sqlite;
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

        using (var connection = (SqliteConnection)OpenWriter())
        {
            SqliteSchema.Apply(connection);
        }

        Log.SqliteOpened(logger, path, _options.Synchronous);
        StartWriters(1, "clusterqueue-sqlite");
    }

    public override string JsonStrings(string parameter) => $"json_each({parameter})";

    public override string SkipLocked => string.Empty;

    protected override string BeginTransaction => "BEGIN IMMEDIATE;";

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
        Execute(connection, $"PRAGMA synchronous = {_options.Synchronous.ToUpperInvariant()};");
        Execute(connection, "PRAGMA busy_timeout = 30000;");
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

        // Only this database's pool: other databases in the same process (tests) keep theirs.
        using var pooled = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(pooled);
    }
}
