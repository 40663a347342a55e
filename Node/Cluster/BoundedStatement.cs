namespace ClusterQueue.Node.Cluster;

/// <summary>
/// One database statement of the cluster's, within a bound however the network behaves: a silent connection neither
/// errors nor honours cancellation promptly, so the wait is bounded here and the statement abandoned (cancelled, and
/// its late failure observed so it is not reported as unobserved).
/// <para>
/// The cancellation runs on a thread of its own, never on the caller's or the pool's. Npgsql (10.0.3,
/// <c>NpgsqlConnector.PerformPostgresCancellation</c>) answers the cancellation of a command in flight by opening a
/// second connection to the server, synchronously, to send a cancel request, and then reads until the server hangs up.
/// Over a link that went silent that takes the connect timeout (15 s by default) or, where the far side accepts but
/// never answers, until the link returns. Awaited, it held up the statement's caller that long
/// (<c>BoundedStatementTests</c>); on the thread pool, each such cancellation would hold a pool thread as long.
/// </para>
/// </summary>
internal static class BoundedStatement
{
    /// <summary>
    /// The statement's result; <see cref="TimeoutException"/> once <paramref name="timeout"/> passed first, or
    /// <see cref="OperationCanceledException"/> once <paramref name="stop"/> is cancelled. Either way the statement is
    /// cancelled in the background.
    /// </summary>
    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> statement, TimeSpan timeout, TimeProvider time, CancellationToken stop)
    {
        // Not linked to stop: a linked source would run Npgsql's callback on the thread that cancels stop.
        var cancel = new CancellationTokenSource();
        using var onStop = stop.UnsafeRegister(static state => CancelInBackground((CancellationTokenSource)state!), cancel);
        var work = statement(cancel.Token);
        _ = work.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        try
        {
            return await work.WaitAsync(timeout, time, stop);
        }
        catch (TimeoutException)
        {
            CancelInBackground(cancel);
            throw;
        }
    }

    private static void CancelInBackground(CancellationTokenSource cancel)
    {
        var thread = new Thread(static state =>
        {
            try
            {
                ((CancellationTokenSource)state!).Cancel();
            }
            catch (AggregateException)
            {
                // A callback that failed to cancel: the statement is abandoned all the same, and its failure observed.
            }
        })
        {
            IsBackground = true,
            Name = "clusterqueue-statement-cancel",
        };
        thread.UnsafeStart(cancel);
    }
}
