using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Queueing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// Keeps one actor per group that has work, and none for idle groups: an idle group costs an entry in the group
/// registry and nothing else (no task, no timer). Actors are created by a wake-up (ingress after a commit, a redrive,
/// the start-up recovery scan, the periodic sweep) and retire themselves when idle. Creation and retirement happen
/// under one lock, so a wake-up either reaches a live actor or creates a new one; it is never lost.
/// </summary>
public sealed class GroupDispatcher : IHostedService, IDisposable
{
    private readonly Dictionary<string, GroupActor> _actors = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationTokenSource _stopSweeping = new();
    private readonly GroupRegistry _registry;
    private readonly IMessageQueue _queue;
    private readonly IMessageHandler _handler;
    private readonly TimeProvider _time;
    private readonly ProcessingOptions _options;
    private readonly NodeMetrics _metrics;
    private readonly NodeReadiness _readiness;
    private readonly ILogger<GroupDispatcher> _logger;
    private readonly Lock _stopGate = new();
    private Task _sweeper = Task.CompletedTask;
    private Task? _stopped;
    private bool _stopping;

    public GroupDispatcher(
        GroupRegistry registry,
        IMessageQueue queue,
        IMessageHandler handler,
        TimeProvider time,
        IOptions<ProcessingOptions> options,
        NodeMetrics metrics,
        NodeReadiness readiness,
        ILogger<GroupDispatcher> logger)
    {
        _registry = registry;
        _queue = queue;
        _handler = handler;
        _time = time;
        _options = options.Value;
        _metrics = metrics;
        _readiness = readiness;
        _logger = logger;
        _registry.Changed += OnGroupChanged;
    }

    public int ActiveActors
    {
        get
        {
            lock (_gate)
            {
                return _actors.Count;
            }
        }
    }

    /// <summary>Tells the group's actor that messages may be visible, creating the actor if the group has none.</summary>
    public void Notify(string groupId)
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }

            if (_actors.TryGetValue(groupId, out var actor))
            {
                actor.Wake();
                return;
            }

            if (!_registry.TryGet(groupId, out var settings))
            {
                return;
            }

            actor = new GroupActor(settings, this, _queue, _handler, _time, _options, _metrics, _logger, _abort.Token);
            _actors[groupId] = actor;
            actor.Start();
        }
    }

    /// <summary>The actor's live state, or null when the group has no actor (nothing in flight, bucket full).</summary>
    public Task<ActorSnapshot>? InspectAsync(string groupId)
    {
        lock (_gate)
        {
            return _actors.TryGetValue(groupId, out var actor) ? actor.InspectAsync() : null;
        }
    }

    /// <summary>Called by an idle actor; refused when a signal arrived meanwhile, so that signal is still handled.</summary>
    internal bool TryRetire(GroupActor actor)
    {
        lock (_gate)
        {
            if (actor.HasSignals)
            {
                return false;
            }

            Forget(actor);
            return true;
        }
    }

    internal void Forget(GroupActor actor)
    {
        lock (_gate)
        {
            if (_actors.TryGetValue(actor.GroupId, out var current) && ReferenceEquals(current, actor))
            {
                _actors.Remove(actor.GroupId);
            }
        }
    }

    private void OnGroupChanged(GroupChange change)
    {
        lock (_gate)
        {
            if (!_actors.TryGetValue(change.GroupId, out var actor))
            {
                return;
            }

            if (change.Settings is { } settings)
            {
                actor.Reconfigure(settings);
            }
            else
            {
                // The group and its queue are gone; calls in flight finish, and their acks find nothing to change.
                _actors.Remove(change.GroupId);
                actor.Stop();
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _sweeper = Task.Run(() => SweepAsync(_stopSweeping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Wakes every group with pending messages: at start, after the queue recovered (messages left by a previous run), and then periodically, as a safety net.</summary>
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var groups = first
                    ? await _queue.RecoverAsync(_registry.All, cancellationToken)
                    : await _queue.GroupsWithPendingAsync(cancellationToken);
                foreach (var group in groups)
                {
                    Notify(group);
                }

                if (first)
                {
                    Log.Recovered(_logger, groups.Count);
                    _readiness.MarkRecovered();
                    first = false;
                }

                failures = 0;
                await Task.Delay(_options.RecoverySweepInterval, _time, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, failures++)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.SweepFailed(_logger, delay, ex);
                try
                {
                    await Task.Delay(delay, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Stops pulling, lets calls in flight finish within the drain timeout, then cancels the rest and hands their messages back.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        // The host can be stopped twice at once (WebApplicationFactory stops it while app.Run() does too, then disposes
        // it): a second call waits for the first instead of touching state the first call's host may have disposed.
        lock (_stopGate)
        {
            return _stopped ??= DrainAsync(cancellationToken);
        }
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        _readiness.MarkDraining();
        await _stopSweeping.CancelAsync();
        GroupActor[] actors;
        lock (_gate)
        {
            _stopping = true;
            actors = [.. _actors.Values];
            _actors.Clear();
        }

        Log.Draining(_logger, actors.Length, _options.DrainTimeout);
        foreach (var actor in actors)
        {
            actor.Stop();
        }

        var drained = Task.WhenAll(actors.Select(a => a.Completion));
        try
        {
            await drained.WaitAsync(_options.DrainTimeout, _time, cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            Log.DrainTimedOut(_logger);
            await _abort.CancelAsync();

            // Cancelled calls release their messages; give those writes a moment to commit.
            await drained.WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await _sweeper.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public void Dispose()
    {
        _registry.Changed -= OnGroupChanged;
        _abort.Dispose();
        _stopSweeping.Dispose();
    }
}
