namespace ClusterQueue.Bench.Probe;

/// <summary>Runs work items 0..count-1 on a fixed number of concurrent workers; returns how many reported failure.</summary>
public static class Pool
{
    public static async Task<int> RunAsync(int count, int concurrency, Func<int, Task<bool>> work)
    {
        var next = -1;
        var failures = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                bool ok;
                try
                {
                    ok = await work(i);
                }
                catch (HttpRequestException)
                {
                    ok = false;
                }

                if (!ok)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }));
        return failures;
    }
}
