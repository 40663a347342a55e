namespace ClusterQueue.Tests.Support;

/// <summary>Settings that put a test node in the SQS queue mode on the emulator, under a queue prefix of its own.</summary>
public static class SqsNode
{
    /// <summary>The emulator checks no signature, but the node's credential chain must find some.</summary>
    private static readonly Dictionary<string, string> Credentials = new()
    {
        ["AWS_ACCESS_KEY_ID"] = "test",
        ["AWS_SECRET_ACCESS_KEY"] = "test",
    };

    static SqsNode()
    {
        // An in-process node reads the credential chain from this process's environment.
        foreach (var (name, value) in Credentials)
        {
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    /// <summary>Configuration for an in-process node (<see cref="NodeHost"/>).</summary>
    public static Dictionary<string, string?> Settings(Uri endpoint, string? prefix = null) => new()
    {
        ["ClusterQueue:Queue"] = "sqs",
        ["ClusterQueue:Sqs:ServiceUrl"] = endpoint.ToString(),
        ["ClusterQueue:Sqs:QueuePrefix"] = prefix ?? UniquePrefix(),

        // Short empty polls keep an idle actor from holding a test up; the emulator answers exactly anyway.
        ["ClusterQueue:Sqs:ReceiveWait"] = "00:00:00.200",
    };

    /// <summary>Environment for a node process (<see cref="NodeProcess"/>): the same settings plus the credentials.</summary>
    public static Dictionary<string, string> ProcessSettings(Uri endpoint, string prefix)
    {
        var all = Settings(endpoint, prefix).ToDictionary(s => s.Key, s => s.Value!);
        foreach (var (name, value) in Credentials)
        {
            all[name] = value;
        }

        return all;
    }

    public static string UniquePrefix() => $"n{Guid.NewGuid():N}"[..12] + "-";
}
