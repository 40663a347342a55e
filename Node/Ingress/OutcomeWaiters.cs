using System.Collections.Concurrent;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// Requests waiting for a message's outcome (<c>POST /hooks/{id}?wait=</c>), by message id. Whatever records a final
/// outcome on this node announces it here; in a cluster the outcome's commit also sends a PostgreSQL notification that
/// every node's listener announces, so the wait works wherever the group is processed. An announcement only says
/// "read the status now": the store is the answer, so a missed or doubled announcement costs a read, not a result.
/// </summary>
public sealed class OutcomeWaiters
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiting = new(StringComparer.Ordinal);

    /// <summary>Completes at the next announcement for the message. Register before reading its status, so none is missed.</summary>
    public Task Next(string messageId) =>
        _waiting.GetOrAdd(messageId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Announce(string messageId)
    {
        if (_waiting.TryRemove(messageId, out var signal))
        {
            signal.TrySetResult();
        }
    }

    /// <summary>A waiter that gave up leaves no entry behind (one still waiting on the same message shares it, and is only slower to hear).</summary>
    public void Leave(string messageId, Task next)
    {
        if (_waiting.TryGetValue(messageId, out var signal) && signal.Task == next)
        {
            _waiting.TryRemove(new KeyValuePair<string, TaskCompletionSource>(messageId, signal));
        }
    }
}
