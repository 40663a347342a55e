using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// What nodes tell each other through PostgreSQL LISTEN/NOTIFY on one dedicated connection:
/// <list type="bullet">
/// <item>group definitions changed: read <c>group_changes</c> after the last change seen and refresh those groups
/// (every node's registry, and so the group's actor wherever it runs);</item>
/// <item>a message a sender waits for has its outcome: wake that sender's request if it waits here.</item>
/// </list>
/// A notification can be missed (a reconnect), so the change log is also polled every <c>ChangePollInterval</c>.
/// Wake-ups for groups and everything about shards travel between members as Akka messages instead.
/// </summary>
public sealed class ClusterSignals : BackgroundService
{
    private readonly PostgresDatabase _database;
    private readonly GroupRegistry _registry;
    private readonly GroupStore _groups;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterSignals> _logger;
    private readonly Ingress.OutcomeWaiters _outcomes;
    private long _seenChange;
    private volatile bool _changesPending = true;

    public ClusterSignals(
        PostgresDatabase database,
        GroupRegistry registry,
        GroupStore groups,
        IOptions<ClusterOptions> options,
        TimeProvider time,
        Ingress.OutcomeWaiters outcomes,
        ILogger<ClusterSignals> logger)
    {
        _outcomes = outcomes;
        _database = database;
        _registry = registry;
        _groups = groups;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _seenChange = registry.LoadedThrough;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() => ListenAsync(stoppingToken), CancellationToken.None);

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
                    $"LISTEN {ClusterStore.GroupsChannel}; LISTEN {PostgresDatabase.OutcomesChannel};", connection))
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
            case ClusterStore.GroupsChannel:
                _changesPending = true;
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
            // Asynchronous and cancellable: a node cut off from the database must still be able to stop.
            var (groupIds, latest) = await _groups.ChangesAfterAsync(_seenChange, cancellationToken);
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
}
