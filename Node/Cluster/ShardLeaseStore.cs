using ClusterQueue.Node.Storage;
using Npgsql;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Membership and shard leases in PostgreSQL. Every expiry is computed and compared with the database's clock
/// (<c>clock_timestamp()</c>), never a node's, so nodes with skewed clocks still agree on who holds what. Every change to
/// a lease names the holder's session (and, where it matters, the epoch), so a node can only ever renew or release what
/// it acquired itself. See docs/cluster.md for the protocol.
/// </summary>
public sealed class ShardLeaseStore(PostgresDatabase database, ClusterOptions options)
{
    /// <summary>Notification channels: group definitions changed, a group has new messages, membership or leases changed.</summary>
    public const string GroupsChannel = PostgresDatabase.GroupsChannel;
    public const string WakeChannel = "clusterqueue_wake";
    public const string ClusterChannel = "clusterqueue_cluster";

    private NpgsqlDataSource Data => database.ControlSource;

    /// <summary>Records the shard count on first start (refusing a node configured with another) and makes sure every shard has its row.</summary>
    public async Task EnsureShardsAsync(int shards, CancellationToken cancellationToken)
    {
        await using var connection = await Data.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var claim = new NpgsqlCommand(
            "INSERT INTO cluster_settings (name, value) VALUES ('shards', @shards) ON CONFLICT (name) DO NOTHING; SELECT value FROM cluster_settings WHERE name = 'shards';",
            connection, transaction))
        {
            claim.Parameters.AddWithValue("shards", shards.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var recorded = (string)(await claim.ExecuteScalarAsync(cancellationToken))!;
            if (!string.Equals(recorded, shards.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))
            {
                throw new InvalidOperationException(
                    $"ClusterQueue:Cluster:Shards is {shards} on this node but the cluster was created with {recorded}; every node must use the same number.");
            }
        }

        await using (var rows = new NpgsqlCommand(
            "INSERT INTO shard_leases (shard) SELECT generate_series(0, @shards - 1) ON CONFLICT (shard) DO NOTHING;", connection, transaction))
        {
            rows.Parameters.AddWithValue("shards", shards);
            await rows.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Renews this node's membership (announcing it when it is new) and returns the nodes that are live and not leaving.</summary>
    public async Task<IReadOnlyList<string>> HeartbeatAsync(string node, Guid session, CancellationToken cancellationToken)
    {
        await using var batch = Data.CreateBatch();
        batch.BatchCommands.Add(Command("""
            INSERT INTO cluster_members (node_id, session, started_at, heartbeat_at, expires_at)
            VALUES (@node, @session, clock_timestamp(), clock_timestamp(), clock_timestamp() + @ttl)
            ON CONFLICT (node_id) DO UPDATE SET
                heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
                started_at = CASE WHEN cluster_members.session = excluded.session THEN cluster_members.started_at ELSE excluded.started_at END,
                leaving = cluster_members.leaving AND cluster_members.session = excluded.session,
                session = excluded.session
            RETURNING (xmax = 0) AS joined;
            """, ("node", node), ("session", session), ("ttl", options.LeaseTtl)));
        batch.BatchCommands.Add(Command("SELECT node_id FROM cluster_members WHERE expires_at > clock_timestamp() AND NOT leaving ORDER BY node_id;"));

        // Members gone for an hour are history; keeping the table small keeps the heartbeat cheap.
        batch.BatchCommands.Add(Command("DELETE FROM cluster_members WHERE expires_at < clock_timestamp() - interval '1 hour';"));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var joined = await reader.ReadAsync(cancellationToken) && reader.GetBoolean(0);
        await reader.NextResultAsync(cancellationToken);
        var live = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            live.Add(reader.GetString(0));
        }

        await reader.DisposeAsync();
        if (joined)
        {
            await NotifyAsync(ClusterChannel, "joined", cancellationToken);
        }

        return live;
    }

    /// <summary>Extends every lease this session still holds; returns them (shard → epoch). A lease that expired is not renewed: it must be acquired again.</summary>
    public async Task<IReadOnlyDictionary<int, long>> RenewAsync(string node, Guid session, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand("""
            UPDATE shard_leases SET expires_at = clock_timestamp() + @ttl
            WHERE owner = @node AND session = @session AND expires_at > clock_timestamp()
            RETURNING shard, epoch;
            """);
        Add(command, ("node", node), ("session", session), ("ttl", options.LeaseTtl));
        var held = new Dictionary<int, long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            held[reader.GetInt32(0)] = reader.GetInt64(1);
        }

        return held;
    }

    /// <summary>
    /// Takes those of <paramref name="shards"/> that are free (released, never held, or expired), each with a new epoch.
    /// For a shard whose previous owner let its lease expire, says how long ago that was, by the database's clock.
    /// </summary>
    public async Task<IReadOnlyList<AcquiredShard>> AcquireAsync(string node, Guid session, IReadOnlyCollection<int> shards, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand("""
            WITH free AS (
                SELECT shard, owner, expires_at FROM shard_leases
                WHERE shard = ANY(@shards) AND (owner IS NULL OR expires_at <= clock_timestamp())
                FOR UPDATE SKIP LOCKED)
            UPDATE shard_leases l
            SET owner = @node, session = @session, epoch = l.epoch + 1, acquired_at = clock_timestamp(), expires_at = clock_timestamp() + @ttl
            FROM free WHERE l.shard = free.shard
            RETURNING l.shard, l.epoch, CASE WHEN free.owner IS NULL THEN NULL ELSE extract(epoch FROM clock_timestamp() - free.expires_at)::float8 END;
            """);
        Add(command, ("node", node), ("session", session), ("ttl", options.LeaseTtl), ("shards", shards.ToArray()));
        var acquired = new List<AcquiredShard>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            acquired.Add(new AcquiredShard(reader.GetInt32(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : TimeSpan.FromSeconds(reader.GetDouble(2))));
        }

        return acquired;
    }

    /// <summary>Takes (and deletes) the buckets previous owners saved for groups of these shards, with their age by the database's clock.</summary>
    public async Task<IReadOnlyList<(int Shard, string GroupId, double Tokens, TimeSpan Age)>> TakeBucketsAsync(IReadOnlyCollection<int> shards, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand(
            "DELETE FROM group_buckets WHERE shard = ANY(@shards) RETURNING shard, group_id, tokens, extract(epoch FROM clock_timestamp() - saved_at)::float8;");
        Add(command, ("shards", shards.ToArray()));
        var buckets = new List<(int, string, double, TimeSpan)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            buckets.Add((reader.GetInt32(0), reader.GetString(1), reader.GetDouble(2), TimeSpan.FromSeconds(Math.Max(0, reader.GetDouble(3)))));
        }

        return buckets;
    }

    /// <summary>
    /// Gives shards up at the end of a handover, saving their groups' buckets for the next owners, and tells the other
    /// nodes at once; one transaction (one connection) however many shards move. A shard this session no longer holds
    /// at the epoch named is left alone, and so are its buckets. Returns the shards released.
    /// </summary>
    public async Task<IReadOnlySet<int>> ReleaseAsync(
        Guid session, IReadOnlyCollection<ShardFence> shards, IReadOnlyCollection<(int Shard, string GroupId, double Tokens)> buckets, CancellationToken cancellationToken)
    {
        await using var connection = await Data.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var released = new HashSet<int>();
        await using (var release = new NpgsqlCommand("""
            UPDATE shard_leases l SET owner = NULL, session = NULL, expires_at = clock_timestamp()
            FROM unnest(@shards, @epochs) AS r(shard, epoch)
            WHERE l.shard = r.shard AND l.epoch = r.epoch AND l.session = @session
            RETURNING l.shard;
            """, connection, transaction))
        {
            Add(release, ("shards", shards.Select(s => s.Shard).ToArray()), ("epochs", shards.Select(s => s.Epoch).ToArray()), ("session", session));
            await using var reader = await release.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                released.Add(reader.GetInt32(0));
            }
        }

        var saved = buckets.Where(b => released.Contains(b.Shard)).ToList();
        if (saved.Count > 0)
        {
            await using var save = new NpgsqlCommand("""
                INSERT INTO group_buckets (group_id, shard, tokens, saved_at)
                SELECT g, s, t, clock_timestamp() FROM unnest(@groups, @shards, @tokens) AS b(g, s, t)
                ON CONFLICT (group_id) DO UPDATE SET shard = excluded.shard, tokens = excluded.tokens, saved_at = excluded.saved_at;
                """, connection, transaction);
            Add(save, ("groups", saved.Select(b => b.GroupId).ToArray()), ("shards", saved.Select(b => b.Shard).ToArray()), ("tokens", saved.Select(b => b.Tokens).ToArray()));
            await save.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var notify = new NpgsqlCommand($"SELECT pg_notify('{ClusterChannel}', 'released');", connection, transaction))
        {
            await notify.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return released;
    }

    /// <summary>Marks this node as leaving, so the others stop counting it before it has released anything.</summary>
    public async Task LeaveAsync(string node, Guid session, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand($"""
            UPDATE cluster_members SET leaving = true WHERE node_id = @node AND session = @session;
            SELECT pg_notify('{ClusterChannel}', 'leaving');
            """);
        Add(command, ("node", node), ("session", session));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The last step of a graceful stop: whatever this session still holds is released, and the member is gone.</summary>
    public async Task ForgetAsync(string node, Guid session, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand($"""
            UPDATE shard_leases SET owner = NULL, session = NULL, expires_at = clock_timestamp() WHERE session = @session;
            DELETE FROM cluster_members WHERE node_id = @node AND session = @session;
            SELECT pg_notify('{ClusterChannel}', 'left');
            """);
        Add(command, ("node", node), ("session", session));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task NotifyAsync(string channel, string payload, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand("SELECT pg_notify(@channel, @payload);");
        Add(command, ("channel", channel), ("payload", payload));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>One notification per group on the wake channel, in one round trip.</summary>
    public async Task NotifyWakeAsync(IReadOnlyCollection<string> groupIds, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand($"SELECT pg_notify('{WakeChannel}', g) FROM unnest(@groups) AS g;");
        Add(command, ("groups", groupIds.ToArray()));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static NpgsqlBatchCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    private static void Add(NpgsqlCommand command, params (string Name, object Value)[] parameters)
    {
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
    }
}

/// <summary>A shard just acquired; <see cref="QuietFor"/> is set when its previous owner's lease had expired (a failover).</summary>
public sealed record AcquiredShard(int Shard, long Epoch, TimeSpan? QuietFor);
