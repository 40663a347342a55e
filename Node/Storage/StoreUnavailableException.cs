namespace ClusterQueue.Node.Storage;

/// <summary>
/// The store could not take a write (disk full, I/O error, database unreachable; see <see cref="StoreFaults"/>).
/// Nothing in the write was acknowledged; the caller answers 503 with Retry-After and the sender tries again.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception innerException) : Exception(message, innerException);
