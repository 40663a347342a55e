using ClusterQueue.Node.Groups;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// Deletes expired dedup keys, old delivered-message statuses and old group-change records, a chunk at a time, so
/// no table grows without bound.
/// </summary>
public sealed class QueuePurger(IMessageQueue queue, GroupStore groups, TimeProvider time, IOptions<QueueOptions> options, ILogger<QueuePurger> logger) : BackgroundService
{
    /// <summary>Every running node reads a change within seconds and a starting node loads every group, so an hour is ample.</summary>
    private static readonly TimeSpan ChangeRetention = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var delay = options.Value.PurgeInterval;
            try
            {
                int removed;
                do
                {
                    removed = await queue.PurgeExpiredAsync(time.GetUtcNow() - options.Value.DeliveredRetention, stoppingToken);
                }
                while (removed > 0 && !stoppingToken.IsCancellationRequested);

                if (options.Value.DeadLetterRetention > TimeSpan.Zero)
                {
                    await queue.PurgeDeadLettersAsync(null, new DeadLetterSelection(DeadBefore: time.GetUtcNow() - options.Value.DeadLetterRetention), stoppingToken);
                }

                await groups.PurgeChangesAsync(time.GetUtcNow() - ChangeRetention, stoppingToken);
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                delay = TimeSpan.FromSeconds(Math.Min(300, Math.Pow(2, ++failures)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.PurgeFailed(logger, delay, ex);
            }

            try
            {
                await Task.Delay(delay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
