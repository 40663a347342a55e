using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Dashboard;

/// <summary>
/// The cluster as the dashboard's header shows it, read from the tables the members keep in PostgreSQL: the live
/// members (their rows in cluster_seeds; leaving as Akka.Cluster sees them), the shards each holds a lease on,
/// and how many groups with a backlog fall in those shards.
/// </summary>
public sealed class ClusterView(IServiceProvider services, ShardOwnership ownership, NodeIdentity identity, ClusterMembership membership)
{
    public async Task<IReadOnlyList<MemberSummary>> MembersAsync(IEnumerable<string> groupsWithBacklog, CancellationToken cancellationToken)
    {
        // Only a cluster registers the PostgreSQL store; resolved here so a node alone never needs it.
        var database = services.GetRequiredService<PostgresDatabase>();
        await using var connection = database.OpenRead();
        await using var command = connection.CreateCommand();
        // A member's row names its remoting address; a shard lease names its owner by the same address, less the scheme.
        command.CommandText = """
            SELECT m.node_id, l.name
            FROM cluster_seeds m
            LEFT JOIN leases l ON 'akka.tcp://' || l.owner = m.address AND l.name LIKE 'clusterqueue-shard-groups-%' AND l.expires_at > now()
            WHERE m.expires_at > now()
            ORDER BY m.node_id, l.name;
            """;
        var leaving = membership.LeavingNodes;
        var members = new SortedDictionary<string, (bool Leaving, List<int> Shards)>(StringComparer.Ordinal);
        var ownerOf = new Dictionary<int, string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var node = reader.GetString(0);
                if (!members.TryGetValue(node, out var member))
                {
                    member = (leaving.Contains(node), []);
                    members[node] = member;
                }

                if (!reader.IsDBNull(1) && ShardOwnership.TryParseLease(reader.GetString(1), out var shard))
                {
                    member.Shards.Add(shard);
                    ownerOf[shard] = node;
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
