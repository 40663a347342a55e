using System.Threading.Channels;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// What nodes tell each other, through PostgreSQL LISTEN/NOTIFY on one dedicated connection:
/// <list type="bullet">
/// <item>group definitions changed: read <c>group_changes</c> after the last change seen and refresh those groups;</item>
/// <item>a group has new messages (ingress on a node that does not own it): wake its actor here if this node owns it;</item>
/// <item>membership or leases changed: run the coordinator's round now instead of at its next tick;</item>
/// <item>a message a sender waits for has its outcome: wake that sender's request if it waits here.</item>
/// </list>
/// A notification can be missed (a reconnect), so the change log is also polled every <c>ChangePollInterval</c>, and the
/// dispatcher's sweep wakes groups with pending messages as before.
/// </summary>
public sealed class ClusterSignals : BackgroundService
{
    private readonly Channel<string> _wakes = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly PostgresDatabase _database;
    private readonly ShardLeaseStore _leases;
    private readonly GroupRegistry _registry;
    private readonly GroupStore _groups;
    private readonly GroupDispatcher _dispatcher;
    private readonly ClusterCoordinator _coordinator;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterSignals> _logger;
    private readonly Ingress.OutcomeWaiters _outcomes;
    private long _seenChange;
    private volatile bool _changesPending = true;

    public ClusterSignals(
        PostgresDatabase database,
        ShardLeaseStore leases,
        GroupRegistry registry,
        GroupStore groups,
        GroupDispatcher dispatcher,
        ClusterCoordinator coordinator,
        IOptions<ClusterOptions> options,
        TimeProvider time,
        Ingress.OutcomeWaiters outcomes,
        ILogger<ClusterSignals> logger)
    {
        _outcomes = outcomes;
        _database = database;
        _leases = leases;
        _registry = registry;
        _groups = groups;
        _dispatcher = dispatcher;
        _coordinator = coordinator;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _seenChange = registry.LoadedThrough;
        _dispatcher.WakeElsewhere += groupId => _wakes.Writer.TryWrite(groupId);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(
            Task.Run(() => ListenAsync(stoppingToken), CancellationToken.None),
            Task.Run(() => SendWakesAsync(stoppingToken), CancellationToken.None));

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _database.ControlSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += OnNotification;
                await using (var listen = new NpgsqlCommand(
                    $"LISTEN {ShardLeaseStore.GroupsChannel}; LISTEN {ShardLeaseStore.WakeChannel}; LISTEN {ShardLeaseStore.ClusterChannel}; LISTEN {PostgresDatabase.OutcomesChannel};", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                // Whatever changed while not listening is in the log.
                _changesPending = true;
                failures = 0;
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (_changesPending)
                    {
                        _changesPending = false;
                        await ApplyChangesAsync(stoppingToken);
                    }

                    if (!await connection.WaitAsync(_options.ChangePollInterval, stoppingToken))
                    {
                        _changesPending = true;
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(5_000, 100 * Math.Pow(2, failures++)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.ListenFailed(_logger, delay, ex);
                await Task.Delay(delay, _time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    // Runs inside WaitAsync on the listening connection, which cannot run a query meanwhile: only record and hand off.
    private void OnNotification(object sender, NpgsqlNotificationEventArgs notification)
    {
        switch (notification.Channel)
        {
            case ShardLeaseStore.GroupsChannel:
                _changesPending = true;
                break;
            case ShardLeaseStore.WakeChannel:
                _dispatcher.NotifyOwned(notification.Payload);
                break;
            case ShardLeaseStore.ClusterChannel:
                _coordinator.Poke();
                break;
            case PostgresDatabase.OutcomesChannel:
                _outcomes.Announce(notification.Payload);
                break;
        }
    }

    private async Task ApplyChangesAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var (groupIds, latest) = _groups.ChangesAfter(_seenChange);
            foreach (var groupId in groupIds)
            {
                await _registry.RefreshAsync(groupId, cancellationToken);
            }

            if (latest == _seenChange)
            {
                return;
            }

            _seenChange = latest;
        }
    }

    /// <summary>Passes wake-ups for groups owned elsewhere on, all that are waiting in one statement.</summary>
    private async Task SendWakesAsync(CancellationToken stoppingToken)
    {
        var pending = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            while (await _wakes.Reader.WaitToReadAsync(stoppingToken))
            {
                while (pending.Count < 1000 && _wakes.Reader.TryRead(out var groupId))
                {
                    pending.Add(groupId);
                }

                try
                {
                    await _leases.NotifyWakeAsync(pending, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The owner's sweep still finds these groups' messages; a wake-up only makes it sooner.
                    Log.WakeFailed(_logger, ex);
                    await Task.Delay(TimeSpan.FromMilliseconds(200), _time, stoppingToken);
                }

                pending.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
