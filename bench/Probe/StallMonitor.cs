namespace ClusterQueue.Bench.Probe;

/// <summary>
/// Measures the probe's own stalls: a thread that asks to sleep 1 ms and notes how long it was actually away. On a
/// shared 2-core machine the downstream's arrival times carry these stalls (arrivals that queue behind one are all
/// stamped at its end), so a window that bunches arrivals can be set against them.
/// </summary>
public sealed class StallMonitor : IDisposable
{
    private readonly List<(long At, double Ms)> _stalls = [];
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
    public IReadOnlyList<(long At, double Ms)> Stalls
    {
        get
        {
            lock (_stalls)
            {
                return _stalls.ToArray();
            }
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
        while (!_stop)
        {
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

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
