using ClusterQueue.Node.Storage;
using Npgsql;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// What the cluster keeps in PostgreSQL besides the leases (<see cref="Leases.PostgresLease"/>) and the groups' saved
/// states (<see cref="Processing.GroupStateStore"/>): the shard count every node must agree on, and the members'
/// remoting addresses a starting node joins (<see cref="DatabaseSeeds"/>). Every time is the database's clock (<c>clock_timestamp()</c>).
/// </summary>
public sealed class ClusterStore(PostgresDatabase database)
{
    /// <summary>Notification channel: group definitions changed.</summary>
    public const string GroupsChannel = PostgresDatabase.GroupsChannel;

    private NpgsqlDataSource Data => database.ClusterSource;

    /// <summary>Records the shard count on first start, and refuses a node configured with another.</summary>
    public async Task EnsureShardsAsync(int shards, CancellationToken cancellationToken)
    {
        await using var claim = Data.CreateCommand(
            "INSERT INTO cluster_settings (name, value) VALUES ('shards', @shards) ON CONFLICT (name) DO NOTHING; SELECT value FROM cluster_settings WHERE name = 'shards';");
        var text = shards.ToString(System.Globalization.CultureInfo.InvariantCulture);
        claim.Parameters.AddWithValue("shards", text);
        var recorded = (string)(await claim.ExecuteScalarAsync(cancellationToken))!;
        if (!string.Equals(recorded, text, StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"ClusterQueue:Cluster:Shards is {shards} on this node but the cluster was created with {recorded}; every node must use the same number.");
        }
    }

    /// <summary>The remoting addresses of live members other than <paramref name="self"/>; on <paramref name="connection"/>, which holds the join lock.</summary>
    public static async Task<IReadOnlyList<string>> LiveSeedsAsync(NpgsqlConnection connection, string self, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT address FROM cluster_seeds WHERE expires_at > clock_timestamp() AND address <> @self ORDER BY address;", connection);
        command.Parameters.AddWithValue("self", self);
        var seeds = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            seeds.Add(reader.GetString(0));
        }

        return seeds;
    }

    /// <summary>
    /// Announces (or renews) this member's address for <paramref name="ttl"/>. Returns the node ids whose rows have all
    /// lapsed (members that cannot reach the database, or that are leaving), and the addresses whose rows lapsed
    /// without leaving (cut off from the database, or dead); rows gone for an hour are deleted.
    /// </summary>
    public async Task<SeedRenewal> RenewSeedAsync(string address, string nodeId, TimeSpan ttl, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand("""
            INSERT INTO cluster_seeds (address, node_id, expires_at) VALUES (@address, @node, clock_timestamp() + @ttl)
            ON CONFLICT (address) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at, leaving = false;
            DELETE FROM cluster_seeds WHERE expires_at < clock_timestamp() - interval '1 hour';
            SELECT node_id FROM cluster_seeds GROUP BY node_id HAVING max(expires_at) <= clock_timestamp();
            SELECT address FROM cluster_seeds WHERE expires_at <= clock_timestamp() AND NOT leaving;
            """);
        command.Parameters.AddWithValue("address", address);
        command.Parameters.AddWithValue("node", nodeId);
        command.Parameters.AddWithValue("ttl", ttl);
        var lapsed = new HashSet<string>(StringComparer.Ordinal);
        var cutOff = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            lapsed.Add(reader.GetString(0));
        }

        await reader.NextResultAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            cutOff.Add(reader.GetString(0));
        }

        return new SeedRenewal(lapsed, cutOff);
    }

    /// <summary>This member is leaving: its row lapses now, so nobody joins it and placement passes it over; marked as leaving, nobody downs it.</summary>
    public async Task RemoveSeedAsync(string address, CancellationToken cancellationToken)
    {
        await using var command = Data.CreateCommand("UPDATE cluster_seeds SET expires_at = clock_timestamp(), leaving = true WHERE address = @address;");
        command.Parameters.AddWithValue("address", address);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Unpooled: the join holds its advisory lock on one of these.</summary>
    public NpgsqlDataSource ControlSource => database.ControlSource;
}

/// <summary>What a member's renewal read: the node ids whose rows all lapsed, and the addresses whose rows lapsed while not leaving.</summary>
public sealed record SeedRenewal(IReadOnlySet<string> LapsedNodes, IReadOnlySet<string> CutOffAddresses);
