namespace ClusterQueue.Node.Observability;

/// <summary>
/// Keeps the backlog per group fresh for OTLP exports, which collect on their own schedule; a /metrics scrape reads it
/// itself first. Runs only when metrics go out by OTLP.
/// </summary>
public sealed class BacklogRefresher(NodeMeter meter, Microsoft.Extensions.Options.IOptions<ObservabilityOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.BacklogRefreshInterval, time);
        try
        {
            do
            {
                // Failures are logged inside and the last backlog kept; the next tick tries again.
                await meter.RefreshAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
