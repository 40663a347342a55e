using ClusterQueue.Node.Cluster;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// Several node processes on one PostgreSQL database of their own, each with its own node id, on loopback. Leases are
/// short so that failover fits in a test: TTL 4 s, renewed every 0.5 s, a node stops 1.5 s before its lease can expire.
/// </summary>
public sealed class ClusterRig : IAsyncDisposable
{
    public const int Shards = 256;
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(4);
    public static readonly TimeSpan SafetyMargin = TimeSpan.FromSeconds(1.5);

    private readonly TempDirectory _directory = new();
    private readonly Dictionary<string, NodeProcess> _nodes = new(StringComparer.Ordinal);

    private ClusterRig(string connectionString) => ConnectionString = connectionString;

    public string ConnectionString { get; }

    public IReadOnlyDictionary<string, NodeProcess> Nodes => _nodes;

    public NodeProcess this[string nodeId] => _nodes[nodeId];

    public static async Task<ClusterRig> CreateAsync(PostgresServer server) => new(await server.CreateDatabaseAsync());

    /// <summary>The settings of one cluster node; <paramref name="connectionString"/> overrides the database's (a relay in front of it).</summary>
    public Dictionary<string, string> Settings(string nodeId, string? connectionString = null) => new()
    {
        ["ClusterQueue:Store"] = "postgres",
        ["ClusterQueue:Postgres:ConnectionString"] = connectionString ?? ConnectionString,
        ["ClusterQueue:NodeId"] = nodeId,
        ["ClusterQueue:Cluster:Shards"] = Shards.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["ClusterQueue:Cluster:LeaseTtl"] = LeaseTtl.ToString(),
        ["ClusterQueue:Cluster:RenewInterval"] = "00:00:00.5",
        ["ClusterQueue:Cluster:SafetyMargin"] = SafetyMargin.ToString(),
        ["ClusterQueue:Cluster:HandoverTimeout"] = "00:00:05",
        ["ClusterQueue:Cluster:ChangePollInterval"] = "00:00:01",
        ["ClusterQueue:Processing:LeaseDuration"] = "00:00:04",
        ["ClusterQueue:Processing:RecoverySweepInterval"] = "00:00:02",
        ["ClusterQueue:Processing:DrainTimeout"] = "00:00:05",
    };

    public async Task<NodeProcess> StartAsync(string nodeId, IDictionary<string, string>? settings = null)
    {
        var node = await NodeProcess.StartAsync(_directory.File($"{nodeId}.db"), settings ?? Settings(nodeId));
        _nodes[nodeId] = node;
        return node;
    }

    /// <summary>Starts the nodes at once, as a deployment would (they race to migrate the same empty database).</summary>
    public async Task StartAllAsync(params string[] nodeIds)
    {
        var started = await Task.WhenAll(nodeIds.Select(id => NodeProcess.StartAsync(_directory.File($"{id}.db"), Settings(id))));
        for (var i = 0; i < nodeIds.Length; i++)
        {
            _nodes[nodeIds[i]] = started[i];
        }
    }

    /// <summary>
    /// A group id (<paramref name="prefix"/>-n) whose shard <paramref name="owner"/> owns when exactly <paramref name="live"/>
    /// are members: the node's shard placement is rendezvous hashing over the members' node ids.
    /// </summary>
    public static string GroupOwnedBy(string owner, IReadOnlyCollection<string> live, string prefix)
    {
        for (var i = 0; ; i++)
        {
            var id = $"{prefix}-{i}";
            if (ShardMap.OwnerOf(ShardMap.ShardOf(id, Shards), live) == owner)
            {
                return id;
            }
        }
    }

    /// <summary>The node's remoting address as its lease rows name it (<c>clusterqueue@host:port</c>), from its row in cluster_seeds.</summary>
    public async Task<string> LeaseOwnerOfAsync(string nodeId)
    {
        await using var database = Npgsql.NpgsqlDataSource.Create(ConnectionString);
        await using var read = database.CreateCommand("SELECT address FROM cluster_seeds WHERE node_id = @node;");
        read.Parameters.AddWithValue("node", nodeId);
        var address = (string?)await read.ExecuteScalarAsync() ?? throw new InvalidOperationException($"{nodeId} has no row in cluster_seeds.");
        return address["akka.tcp://".Length..];
    }

    /// <summary>How many shard leases <paramref name="owner"/> holds unexpired, by the database's clock.</summary>
    public async Task<long> ShardLeasesHeldAsync(string owner)
    {
        await using var database = Npgsql.NpgsqlDataSource.Create(ConnectionString);
        await using var count = database.CreateCommand(
            "SELECT count(*) FROM leases WHERE name LIKE 'clusterqueue-shard-groups-%' AND owner = @owner AND expires_at > clock_timestamp();");
        count.Parameters.AddWithValue("owner", owner);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>How many steps the shard coordinator has written to its journal (its highest sequence number).</summary>
    public async Task<long> CoordinatorStepsAsync()
    {
        await using var database = Npgsql.NpgsqlDataSource.Create(ConnectionString);
        await using var read = database.CreateCommand($"SELECT coalesce(max(sequence_number), 0) FROM {Node.Cluster.CoordinatorState.JournalTable} WHERE persistence_id = @id;");
        read.Parameters.AddWithValue("id", Node.Cluster.CoordinatorState.PersistenceIdOf(Node.Processing.GroupShards.TypeName));
        return (long)(await read.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes.Values)
        {
            await node.DisposeAsync();
        }

        _directory.Dispose();
    }
}
