using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Queueing;

/// <summary>Deletes expired dedup keys and old delivered-message statuses, a chunk at a time, so neither table grows without bound.</summary>
public sealed class QueuePurger(IMessageQueue queue, TimeProvider time, IOptions<QueueOptions> options, ILogger<QueuePurger> logger) : BackgroundService
{
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
