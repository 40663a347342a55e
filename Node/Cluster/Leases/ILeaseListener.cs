namespace ClusterQueue.Node.Cluster.Leases;

/// <summary>
/// Told by <see cref="PostgresLease"/> what happens to the leases it holds, so the node can fence and hand over the
/// work a lease guards. Optional: a lease whose actor system's services have none just does without. Each call comes
/// before the lease's own caller hears of the change (an acquisition is reported before Acquire returns true, a
/// release before the row is freed), so what the listener sets up is in place when the lease's holder acts on it.
/// </summary>
public interface ILeaseListener
{
    /// <summary>
    /// The lease is now this owner's. <paramref name="quietFor"/> is set when it was taken from another owner whose
    /// lease had expired (that owner failed): how long ago, by the database's clock. <paramref name="takenOverAt"/> is
    /// the epoch at which that last happened to this lease (0 if never).
    /// </summary>
    Task AcquiredAsync(LeaseTenure tenure, TimeSpan? quietFor, long takenOverAt, CancellationToken cancellationToken);

    /// <summary>The holder is releasing the lease; the row is freed once this returns.</summary>
    Task ReleasingAsync(LeaseTenure tenure, CancellationToken cancellationToken);

    /// <summary>
    /// The tenure is over: released, or lost (not renewed in time, or taken by another owner). Called on the watchdog's
    /// timer before the holder's lost callback, so what the tenure runs can be stopped here without waiting for it.
    /// </summary>
    void Ended(LeaseTenure tenure);
}

/// <summary>One holding of a named lease: who holds it and at which epoch.</summary>
public readonly record struct LeaseTenure(string Name, string Owner, long Epoch);
