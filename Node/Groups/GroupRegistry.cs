using System.Collections.Concurrent;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Queueing;

namespace ClusterQueue.Node.Groups;

/// <summary>
/// The node's view of every defined group, held in memory so ingress and actors never read the store per message.
/// It is the one writer of group definitions: changes go to the store first, then to the cache, then to listeners
/// (the dispatcher), so a listener never sees a definition that is not durable.
/// </summary>
public sealed class GroupRegistry
{
    private readonly ConcurrentDictionary<string, GroupSettings> _groups = new(StringComparer.Ordinal);
    // Writes to one group take turns (a PATCH reads the current definition, and the cache must follow the store in
    // commit order); writes to different groups need not, and one lock for all made a thousand PATCHes wait for a
    // thousand commits in a row. A group hashes to one of these.
    private readonly SemaphoreSlim[] _writeLocks = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];
    private readonly GroupStore _store;
    private readonly IMessageQueue _queue;
    private readonly TimeProvider _time;

    public GroupRegistry(GroupStore store, IMessageQueue queue, TimeProvider time)
    {
        _store = store;
        _queue = queue;
        _time = time;

        // The change number first: a change committed while the groups load is read again later, never missed.
        LoadedThrough = store.LatestChange();
        foreach (var settings in store.LoadAll())
        {
            _groups[settings.Id] = settings;
        }
    }

    /// <summary>Raised after a change is durable; handlers must be quick and must not throw.</summary>
    public event Action<GroupChange>? Changed;

    public int Count => _groups.Count;

    /// <summary>The store's newest change when this registry loaded: where a node following other nodes' changes starts.</summary>
    public long LoadedThrough { get; }

    public bool TryGet(string id, out GroupSettings settings) => _groups.TryGetValue(id, out settings!);

    /// <summary>Every group, in no order.</summary>
    public IReadOnlyCollection<GroupSettings> All => [.. _groups.Values];

    /// <summary>Groups ordered by id, starting after <paramref name="after"/>.</summary>
    public IReadOnlyList<GroupSettings> List(string? after, int limit) =>
        _groups.Values
            .Where(g => after is null || string.CompareOrdinal(g.Id, after) > 0)
            .OrderBy(g => g.Id, StringComparer.Ordinal)
            .Take(limit)
            .ToList();

    public async Task<GroupWriteResult> PutAsync(string id, GroupDefinition definition, CancellationToken cancellationToken)
    {
        var writeLock = WriteLockFor(id);
        await writeLock.WaitAsync(cancellationToken);
        try
        {
            return await WriteAsync(id, definition, Current(id), cancellationToken);
        }
        finally
        {
            writeLock.Release();
        }
    }

    public async Task<GroupWriteResult> PatchAsync(string id, GroupDefinition patch, CancellationToken cancellationToken)
    {
        var writeLock = WriteLockFor(id);
        await writeLock.WaitAsync(cancellationToken);
        try
        {
            if (Current(id) is not { } current)
            {
                return GroupWriteResult.NotFound;
            }

            return await WriteAsync(id, GroupValidator.Merge(current.ToDefinition(), patch), current, cancellationToken);
        }
        finally
        {
            writeLock.Release();
        }
    }

    /// <summary>Pauses or resumes the group; null when it does not exist. Pausing a paused group keeps its first pause time.</summary>
    public async Task<GroupSettings?> SetPausedAsync(string id, bool paused, CancellationToken cancellationToken)
    {
        var writeLock = WriteLockFor(id);
        await writeLock.WaitAsync(cancellationToken);
        try
        {
            // From the store in a cluster: another node may have paused or resumed it a moment ago.
            var current = _store.HasPeers ? _store.Load(id) : Current(id);
            if (current is null)
            {
                return null;
            }

            if ((current.PausedAt is not null) == paused)
            {
                return current;
            }

            var now = _time.GetUtcNow();
            var pausedAt = paused ? now : (DateTimeOffset?)null;
            if (!await _store.SetPausedAsync(id, pausedAt, now, CancellationToken.None))
            {
                return null;
            }

            var settings = current with { PausedAt = pausedAt, UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()) };
            _groups[id] = settings;
            Changed?.Invoke(new GroupChange(id, settings));
            return settings;
        }
        finally
        {
            writeLock.Release();
        }
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        var writeLock = WriteLockFor(id);
        await writeLock.WaitAsync(cancellationToken);
        try
        {
            // The queue goes first: if that fails the group stays whole, and deleting it again finishes the job.
            if (Current(id) is not null)
            {
                await _queue.RemoveGroupAsync(id, CancellationToken.None);
            }

            var existed = await _store.DeleteAsync(id, CancellationToken.None);
            if (_groups.TryRemove(id, out _) || existed)
            {
                Changed?.Invoke(new GroupChange(id, null));
                return true;
            }

            return false;
        }
        finally
        {
            writeLock.Release();
        }
    }

    private SemaphoreSlim WriteLockFor(string id) => _writeLocks[(uint)StringComparer.Ordinal.GetHashCode(id) % (uint)_writeLocks.Length];

    /// <summary>The group as this node knows it, or as the store has it when another node may have defined it just now.</summary>
    private GroupSettings? Current(string id) =>
        _groups.TryGetValue(id, out var settings) ? settings : _store.HasPeers ? _store.Load(id) : null;

    /// <summary>
    /// The group, also when another node defined it a moment ago and its notification has not arrived yet: in a cluster a
    /// miss is checked against the store, so "define on one node, post to another" never answers 404.
    /// </summary>
    public async ValueTask<GroupSettings?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (_groups.TryGetValue(id, out var settings) || !_store.HasPeers)
        {
            return settings;
        }

        await RefreshAsync(id, cancellationToken);
        return _groups.GetValueOrDefault(id);
    }

    /// <summary>
    /// Another node changed the group: reads its definition from the store and passes the change on like a local one.
    /// Reading the whole definition (rather than trusting the notification's order) makes applying a change twice, or
    /// out of order, harmless.
    /// </summary>
    public async Task RefreshAsync(string id, CancellationToken cancellationToken)
    {
        var writeLock = WriteLockFor(id);
        await writeLock.WaitAsync(cancellationToken);
        try
        {
            var stored = _store.Load(id);
            _groups.TryGetValue(id, out var cached);
            if (stored is null)
            {
                if (_groups.TryRemove(id, out _))
                {
                    Changed?.Invoke(new GroupChange(id, null));
                }
            }
            else if (cached is null || cached.UpdatedAt != stored.UpdatedAt)
            {
                _groups[id] = stored;
                Changed?.Invoke(new GroupChange(id, stored));
            }
        }
        finally
        {
            writeLock.Release();
        }
    }

    // Store writes ignore the caller's cancellation: once a write is queued it may commit, and the cache must follow the store.
    private async Task<GroupWriteResult> WriteAsync(string id, GroupDefinition definition, GroupSettings? current, CancellationToken cancellationToken)
    {
        var errors = GroupValidator.Validate(definition);
        if (errors.Count > 0)
        {
            return GroupWriteResult.Invalid(errors);
        }

        var now = _time.GetUtcNow();
        // A new definition keeps the group's pause: only resume ends it.
        var settings = GroupSettings.FromValidDefinition(id, definition, current?.CreatedAt ?? now, now) with { PausedAt = current?.PausedAt };

        // The queue is ready before the definition is stored, so ingress never accepts for a group without a queue.
        await _queue.PrepareGroupAsync(id, settings.HandlerTimeout, CancellationToken.None);
        var created = await _store.UpsertAsync(settings, CancellationToken.None);
        _groups[id] = settings;
        Changed?.Invoke(new GroupChange(id, settings));
        return new GroupWriteResult(created ? GroupWriteOutcome.Created : GroupWriteOutcome.Replaced, settings, null);
    }
}
