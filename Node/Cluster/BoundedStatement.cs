namespace ClusterQueue.Node.Cluster;

/// <summary>
/// One database statement of the cluster's, within a bound however the network behaves: a silent connection neither
/// errors nor honours cancellation promptly, so the wait is bounded here and the statement abandoned (cancelled, and
/// its late failure observed so it is not reported as unobserved).
/// </summary>
internal static class BoundedStatement
{
    /// <summary>The statement's result; <see cref="TimeoutException"/> once <paramref name="timeout"/> passed first.</summary>
    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> statement, TimeSpan timeout, TimeProvider time, CancellationToken stop)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var work = statement(cancel.Token);
        _ = work.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        try
        {
            return await work.WaitAsync(timeout, time, stop);
        }
        catch (TimeoutException)
        {
            await cancel.CancelAsync();
            throw;
        }
    }
}
