using System.Text.RegularExpressions;

namespace ClusterQueue.Node.Cluster;

/// <summary>This node's name in the cluster (<c>ClusterQueue:NodeId</c>, else the host name: a pod's name in Kubernetes).</summary>
public sealed partial record NodeIdentity(string Id)
{
    public static NodeIdentity From(IConfiguration configuration)
    {
        var id = configuration["ClusterQueue:NodeId"];
        id = string.IsNullOrWhiteSpace(id) ? Environment.MachineName : id.Trim();
        if (!ValidId().IsMatch(id))
        {
            throw new InvalidOperationException($"ClusterQueue:NodeId '{id}' must be 1-128 characters of letters, digits, '.', '_' or '-'.");
        }

        return new NodeIdentity(id);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,128}$")]
    private static partial Regex ValidId();
}
