namespace ClusterQueue.Node.Storage;

/// <summary>
/// Whether the store takes writes. The writer loops report every write that failed with a store fault
/// (<see cref="StoreFaults"/>) and every one that was kept; the first fault makes the node not ready, and the next write
/// that is kept (a request's, or the <see cref="StoreProbe"/>'s while no request comes) makes it ready again. Only the
/// change is logged, not each failing write: a full disk refuses every write, and the senders keep retrying.
/// </summary>
public sealed class StoreHealth(TimeProvider time, ILogger<StoreHealth> logger)
{
    private readonly Lock _gate = new();
    private Outage? _outage;
    private TaskCompletionSource _failing = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>False from a write that failed with a store fault until a write is kept again.</summary>
    public bool IsWritable => Volatile.Read(ref _outage) is null;

    /// <summary>Completes when writes are failing: at once if they are now, otherwise at the next store fault.</summary>
    public Task FailingAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _outage is null ? _failing.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
        }
    }

    internal void WriteFailed(Exception fault)
    {
        lock (_gate)
        {
            if (_outage is { } outage)
            {
                outage.Failures++;
                return;
            }

            Volatile.Write(ref _outage, new Outage(time.GetTimestamp()));
            _failing.TrySetResult();
        }

        Log.StoreWritesFailing(logger, fault);
    }

    internal void WriteKept()
    {
        // Every commit passes here: without an outage it costs one read.
        if (Volatile.Read(ref _outage) is null)
        {
            return;
        }

        Outage ended;
        lock (_gate)
        {
            if (_outage is null)
            {
                return;
            }

            ended = _outage;
            Volatile.Write(ref _outage, null);
            _failing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        Log.StoreWritesRecovered(logger, time.GetElapsedTime(ended.Since), ended.Failures);
    }

    private sealed class Outage(long since)
    {
        public long Since { get; } = since;

        public int Failures { get; set; } = 1;
    }
}
