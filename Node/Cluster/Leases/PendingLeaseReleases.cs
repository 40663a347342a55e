using System.Collections.Concurrent;

namespace ClusterQueue.Node.Cluster.Leases;

/// <summary>
/// The shard leases being released in the background (<see cref="PostgresLease.Release"/>): the actor system's
/// shutdown waits for them before the store closes, so a node that drains frees its rows rather than leaving them to
/// expire.
/// </summary>
public sealed class PendingLeaseReleases
{
    private readonly ConcurrentDictionary<Task, byte> _pending = new();

    public void Track(Task release)
    {
        _pending.TryAdd(release, 0);
        _ = release.ContinueWith(done => _pending.TryRemove(done, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Completes once every release tracked so far has finished (they never fault), or at <paramref name="timeout"/>; false then.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_pending.Keys).WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
