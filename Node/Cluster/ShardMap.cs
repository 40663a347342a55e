using System.Text;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// Which shard a group belongs to, and which live node should own a shard. Both are pure functions of their inputs, so
/// every node computes the same answer without talking to the others.
///
/// Owners are chosen by rendezvous (highest-random-weight) hashing: each node scores every shard and the highest score
/// wins. A node that joins takes only the shards it now scores highest on, and a node that leaves gives up only its
/// own, about 1/n of the shards either way; nothing else moves.
/// </summary>
public static class ShardMap
{
    /// <summary>The group's shard: a stable hash of its id (never string.GetHashCode, which differs per process).</summary>
    public static int ShardOf(string groupId, int shards) => (int)(Hash(groupId) % (ulong)shards);

    /// <summary>The live node that should own <paramref name="shard"/>; null when no node is live.</summary>
    public static string? OwnerOf(int shard, IReadOnlyCollection<string> liveNodes)
    {
        string? best = null;
        ulong bestWeight = 0;
        foreach (var node in liveNodes)
        {
            var weight = Weight(node, shard);
            if (best is null || weight > bestWeight || (weight == bestWeight && string.CompareOrdinal(node, best) < 0))
            {
                best = node;
                bestWeight = weight;
            }
        }

        return best;
    }

    /// <summary>The shards <paramref name="node"/> should own among <paramref name="liveNodes"/>.</summary>
    public static IReadOnlySet<int> ShardsOf(string node, IReadOnlyCollection<string> liveNodes, int shards)
    {
        var owned = new HashSet<int>();
        for (var shard = 0; shard < shards; shard++)
        {
            if (string.Equals(OwnerOf(shard, liveNodes), node, StringComparison.Ordinal))
            {
                owned.Add(shard);
            }
        }

        return owned;
    }

    internal static ulong Weight(string node, int shard) => Mix(Hash(node) ^ ((ulong)(uint)shard * 0x9E3779B97F4A7C15UL));

    /// <summary>
    /// FNV-1a over the UTF-8 bytes, finished with a mix so close inputs land far apart. Ingress asks for a group's shard
    /// on every message, so ids of the usual length are encoded on the stack rather than into a new array.
    /// </summary>
    internal static ulong Hash(string value)
    {
        var length = Encoding.UTF8.GetMaxByteCount(value.Length);
        Span<byte> bytes = length <= 512 ? stackalloc byte[length] : new byte[length];
        bytes = bytes[..Encoding.UTF8.GetBytes(value, bytes)];
        var hash = 14695981039346656037UL;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return Mix(hash);
    }

    /// <summary>The splitmix64 finaliser: every input bit affects every output bit.</summary>
    private static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
