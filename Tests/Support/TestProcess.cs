using System.Runtime.CompilerServices;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The test process parks thread-pool threads for good: the VSTest channel and the xunit adapter block one each, and
/// every in-process node runs its Program.Main (<c>app.Run()</c>) on one for as long as it lives. With the default
/// minimum of one thread per core, a 2-core machine then has no pool thread left, and the pool adds one only every
/// half second or so: nodes and downstreams stall for up to a second, which timing tests see as missing or bunched
/// calls. A real node runs Main on its own thread, so this is the test host's problem and is solved here.
/// </summary>
internal static class TestProcess
{
    private const int MinimumPoolThreads = 64;

    [ModuleInitializer]
    internal static void ReservePoolThreads()
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, MinimumPoolThreads), Math.Max(completionPorts, MinimumPoolThreads));
    }
}
