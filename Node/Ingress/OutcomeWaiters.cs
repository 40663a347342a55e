namespace ClusterQueue.Node.Ingress;

/// <summary>
/// Requests waiting for a message's outcome (<c>POST /hooks/{id}?wait=</c>), by message id. Whatever records a final
/// outcome on this node announces it here; in a cluster the outcome's commit also sends a PostgreSQL notification that
/// every node's listener announces, so the wait works wherever the group is processed. An announcement only says
/// "read the status now": the store is the answer, so a missed or doubled announcement costs a read, not a result.
/// </summary>
public sealed class OutcomeWaiters
{
    private readonly Dictionary<string, Entry> _waiting = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// Completes at the next announcement for the message. Register before reading its status, so none is missed, and
    /// <see cref="Leave"/> once done with the task, whatever happened.
    /// </summary>
    public Task Next(string messageId)
    {
        lock (_lock)
        {
            if (!_waiting.TryGetValue(messageId, out var entry))
            {
                entry = new Entry();
                _waiting[messageId] = entry;
            }

            entry.Waiters++;
            return entry.Signal.Task;
        }
    }

    public void Announce(string messageId)
    {
        Entry? entry;
        lock (_lock)
        {
            if (!_waiting.Remove(messageId, out entry))
            {
                return;
            }
        }

        entry.Signal.TrySetResult();
    }

    /// <summary>
    /// Ends one waiter's interest in <paramref name="next"/>. Counted, because senders of one delivery id share an
    /// entry: the first to give up must not take it from the others, and the last leaves nothing behind (a message
    /// that never gets an outcome, purged or its group deleted, would otherwise keep its entry for the node's life).
    /// </summary>
    public void Leave(string messageId, Task next)
    {
        lock (_lock)
        {
            if (_waiting.TryGetValue(messageId, out var entry) && entry.Signal.Task == next && --entry.Waiters == 0)
            {
                _waiting.Remove(messageId);
            }
        }
    }

    /// <summary>Messages someone on this node waits for.</summary>
    internal int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    private sealed class Entry
    {
        public TaskCompletionSource Signal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Waiters { get; set; }
    }
}
