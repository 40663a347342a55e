using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Dashboard;

/// <summary>
/// The cluster as the dashboard's header shows it, read from the tables the members keep in PostgreSQL: the live
/// members, the shards each holds a lease on, and how many groups with a backlog fall in those shards.
/// </summary>
public sealed class ClusterView(IServiceProvider services, ShardOwnership ownership, NodeIdentity identity)
{
    public async Task<IReadOnlyList<MemberSummary>> MembersAsync(IEnumerable<string> groupsWithBacklog, CancellationToken cancellationToken)
    {
        // Only a cluster registers the PostgreSQL store; resolved here so a node alone never needs it.
        var database = services.GetRequiredService<PostgresDatabase>();
        await using var connection = database.OpenRead();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT m.node_id, m.leaving, l.shard
            FROM cluster_members m
            LEFT JOIN shard_leases l ON l.owner = m.node_id AND l.session = m.session AND l.expires_at > now()
            WHERE m.expires_at > now()
            ORDER BY m.node_id, l.shard;
            """;
        var members = new SortedDictionary<string, (bool Leaving, List<int> Shards)>(StringComparer.Ordinal);
        var ownerOf = new Dictionary<int, string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var node = reader.GetString(0);
                if (!members.TryGetValue(node, out var member))
                {
                    member = (reader.GetBoolean(1), []);
                    members[node] = member;
                }

                if (!reader.IsDBNull(2))
                {
                    member.Shards.Add(reader.GetInt32(2));
                    ownerOf[reader.GetInt32(2)] = node;
                }
            }
        }

        var active = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var group in groupsWithBacklog)
        {
            if (ownerOf.TryGetValue(ownership.ShardOf(group), out var owner))
            {
                active[owner] = active.GetValueOrDefault(owner) + 1;
            }
        }

        return [.. members.Select(member => new MemberSummary(
            member.Key, member.Key == identity.Id, member.Value.Leaving, member.Value.Shards.Count, active.GetValueOrDefault(member.Key)))];
    }
}
