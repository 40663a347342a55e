namespace ClusterQueue.Bench.Probe;

/// <summary>
/// Measures the probe's own stalls: a thread that asks to sleep 1 ms and notes how long it was actually away. On a
/// shared 2-core machine the downstream's arrival times carry these stalls (arrivals that queue behind one are all
/// stamped at its end), so a window that bunches arrivals can be set against them. It also queues a work item on the
/// thread pool every 10 ms and notes how long each waited to run: the downstream's handler runs on the pool, so an
/// arrival that queued there is stamped late even while this thread runs on time.
/// </summary>
public sealed class StallMonitor : IDisposable
{
    private readonly List<(long At, double Ms)> _stalls = [];
    private readonly List<(long At, double Ms)> _poolWaits = [];
    private readonly Thread _thread;
    private volatile bool _stop;

    private readonly long _startedTicks = Clock.Now;
    private readonly DateTimeOffset _startedWall = DateTimeOffset.UtcNow;

    public StallMonitor()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "stall monitor", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>Stalls of at least 5 ms: when each ended, and how long it lasted.</summary>
    public IReadOnlyList<(long At, double Ms)> Stalls => Copy(_stalls);

    /// <summary>Thread-pool waits of at least 5 ms: when the work item ran, and how long it had waited.</summary>
    public IReadOnlyList<(long At, double Ms)> PoolWaits => Copy(_poolWaits);

    private static (long At, double Ms)[] Copy(List<(long At, double Ms)> found)
    {
        lock (found)
        {
            return found.ToArray();
        }
    }

    /// <summary>
    /// How much faster the wall clock (what TimeProvider.System's GetUtcNow reads) ran than the monotonic clock since
    /// the start, as a fraction: the node's buckets earn tokens by wall-clock time, the probe measures by monotonic time.
    /// </summary>
    public double WallClockDrift()
    {
        var monotonic = Clock.Seconds(Clock.Now - _startedTicks);
        var wall = (DateTimeOffset.UtcNow - _startedWall).TotalSeconds;
        return wall / monotonic - 1;
    }

    private void Run()
    {
        var sleeps = 0;
        while (!_stop)
        {
            if (++sleeps % 10 == 0)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static state => state.Monitor.NotePoolWait(state.QueuedAt), (Monitor: this, QueuedAt: Clock.Now), preferLocal: false);
            }

            var before = Clock.Now;
            Thread.Sleep(1);
            var after = Clock.Now;
            var ms = Clock.Milliseconds(after - before) - 1;
            if (ms >= 5)
            {
                lock (_stalls)
                {
                    _stalls.Add((after, ms));
                }
            }
        }
    }

    private void NotePoolWait(long queuedAt)
    {
        var now = Clock.Now;
        var ms = Clock.Milliseconds(now - queuedAt);
        if (ms >= 5)
        {
            lock (_poolWaits)
            {
                _poolWaits.Add((now, ms));
            }
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
