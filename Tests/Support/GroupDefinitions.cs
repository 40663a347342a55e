using ClusterQueue.Contracts;

namespace ClusterQueue.Tests.Support;

/// <summary>Group definitions for tests: valid by default, changed with `with`.</summary>
public static class GroupDefinitions
{
    public static GroupDefinition Forwarding(Downstream downstream, string path, double rate = 1000, int burst = 1000, int concurrency = 100) => new()
    {
        RatePerSecond = rate,
        Burst = burst,
        MaxConcurrency = concurrency,
        Target = new TargetDefinition { Url = downstream.Url(path) },
    };
}
