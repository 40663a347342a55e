using System.Data.Common;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The cluster's store. Several writer loops (<c>Postgres:Writers</c>) each commit batches on their own connection, so
/// one slow commit does not hold every request, while each batch still shares one commit among its operations. Leases
/// skip rows another transaction holds (<c>FOR UPDATE SKIP LOCKED</c>), so writers and nodes never queue behind each
/// other for messages.
/// </summary>
public sealed class PostgresDatabase : SqlDatabase
{
    private readonly NpgsqlDataSource _dataSource;

    // The configured connection string with its password: a data source's own leaves the password out.
    private readonly string _connectionString;
    private readonly NpgsqlDataSource _controlSource;
    private readonly NpgsqlDataSource _clusterSource;

    public PostgresDatabase(IOptions<StorageOptions> options, ILogger<PostgresDatabase> logger, StoreHealth? health = null)
        : base(options.Value.Postgres.MaxBatch, logger, health)
    {
        var settings = options.Value.Postgres;
        var connection = new NpgsqlConnectionStringBuilder(settings.ConnectionString);

        // The same few statements run all day: preparing them once per connection saves a parse per call.
        if (connection.MaxAutoPrepare == 0)
        {
            connection.MaxAutoPrepare = 64;
        }

        _connectionString = connection.ConnectionString;
        _dataSource = NpgsqlDataSource.Create(connection);

        // LISTEN and the join's advisory lock hold a connection for long: not pooled, so neither ever hands a
        // half-finished connection to a pool.
        var control = new NpgsqlConnectionStringBuilder(connection.ConnectionString) { Pooling = false };
        _controlSource = NpgsqlDataSource.Create(control);

        // The leases' statements are short but many (a node renews each of its shards' leases, and a failover acquires
        // a dead node's shards together, retrying every 200 ms): opening a connection for each made a takeover's
        // acquisitions queue for up to a second. Their own small pool, apart from the message path's, so a statement
        // abandoned at its deadline (a frozen network) takes no connection the message path needs.
        var cluster = new NpgsqlConnectionStringBuilder(connection.ConnectionString) { MaxPoolSize = ClusterPoolSize, MinPoolSize = 0 };
        _clusterSource = NpgsqlDataSource.Create(cluster);
        PostgresSchema.Apply(_dataSource, logger);
        Log.PostgresOpened(logger, connection.Host, connection.Database, settings.Writers);
        StartWriters(settings.Writers, "clusterqueue-postgres");
    }

    /// <summary>Unpooled connections for what holds one for long: LISTEN/NOTIFY and the join's advisory lock.</summary>
    public NpgsqlDataSource ControlSource => _controlSource;

    /// <summary>Pooled connections, apart from the message path's, for the cluster's short statements: leases and members' rows.</summary>
    public NpgsqlDataSource ClusterSource => _clusterSource;

    /// <summary>Connections of <see cref="ClusterSource"/>: enough for a takeover's acquisitions in parallel, few for the server.</summary>
    public const int ClusterPoolSize = 8;

    public override string JsonStrings(string parameter) => $"json_array_elements_text({parameter}::json)";

    public override string SkipLocked => "FOR UPDATE SKIP LOCKED";

    // A small pool of its own: group states are read as actors start and written as they stop, a few at a time. Their
    // commits do not wait for the disk (AsynchronousPool).
    public override (string ConnectionString, string Provider) PersistenceConnection => AsynchronousPool(ClusterPoolSize);

    /// <summary>
    /// A pool of <paramref name="size"/> connections for Akka.Persistence.Sql (linq2db) whose commits do not wait for
    /// the disk: the configured connection string with <c>synchronous_commit = off</c> added to its server options, and
    /// a distinct Npgsql pool for a distinct <paramref name="applicationName"/>. A commit returns before the server has
    /// flushed it, and a server crash may lose the last few hundred milliseconds of such commits. That loses nothing
    /// these writes must keep. A state saved at a handover is followed by the lease's release, a synchronous commit,
    /// which flushes every earlier commit with it: if the release survives, the state does. A state saved at
    /// passivation differs from a fresh actor's only in its AIMD rate. The coordinator's journal only records where
    /// shards were placed, which the leases decide, not it (Akka's default keeps it in memory alone). Under the load of
    /// a leave, each of these commits waited for the disk in turn: 103 states and 114 coordinator steps.
    /// </summary>
    private (string ConnectionString, string Provider) AsynchronousPool(int size, string? applicationName = null)
    {
        var connection = new NpgsqlConnectionStringBuilder(_connectionString) { MaxPoolSize = size, MinPoolSize = 0, MaxAutoPrepare = 0 };
        connection.Options = $"{connection.Options} -c synchronous_commit=off".TrimStart();
        if (applicationName is not null)
        {
            connection.ApplicationName = applicationName;
        }

        return (connection.ToString(), LinqToDB.ProviderName.PostgreSQL15);
    }

    /// <summary>
    /// How the shard coordinator's journal reaches the database (<see cref="Cluster.CoordinatorState"/>): a pool of its
    /// own, so that its steps, one at a time, never queue behind the group states that a leaving member's actors save
    /// all at once on <see cref="PersistenceConnection"/>.
    /// </summary>
    public (string ConnectionString, string Provider) CoordinatorConnection => AsynchronousPool(CoordinatorPoolSize, "clusterqueue-shard-coordinator");

    /// <summary>Connections of <see cref="CoordinatorConnection"/>: the coordinator writes one step at a time, and reads at recovery.</summary>
    public const int CoordinatorPoolSize = 2;

    /// <summary>The channel on which a node announces group definition changes (delivered when its transaction commits).</summary>
    public const string GroupsChannel = "clusterqueue_groups";

    public override string GroupsChangedNotification => $"SELECT pg_notify('{GroupsChannel}', '');";

    /// <summary>The channel on which a node announces a waited-for message's outcome; the payload is the message id.</summary>
    public const string OutcomesChannel = "clusterqueue_outcomes";

    public override string OutcomeNotification => $"SELECT pg_notify('{OutcomesChannel}', @outcome_id);";

    /// <summary>Any fixed number, apart from the migration lock's: the transaction-scoped lock that orders group change records.</summary>
    private const long ChangeOrderLockKey = 0x436c51_4368_6e67;

    public override string ChangeOrderLock => $"SELECT pg_advisory_xact_lock({ChangeOrderLockKey});";

    protected override bool CacheCommands => false;

    protected override bool TransactionObjects => true;

    /// <summary>Enough that the writers of a few nodes rarely share a counter row (see <see cref="SqlWriteContext.FlushCounters"/>).</summary>
    protected override int CounterSlots => 64;

    public override DbConnection OpenRead() => _dataSource.OpenConnection();

    public override async ValueTask<DbConnection> OpenReadAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken);

    protected override DbConnection OpenWriter() => _dataSource.OpenConnection();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _dataSource.DisposeAsync();
        await _controlSource.DisposeAsync();
        await _clusterSource.DisposeAsync();
    }
}
