namespace ClusterQueue.Node.Storage;

/// <summary>
/// While store writes fail, tries a small write every <see cref="Interval"/> so the node notices by itself that space
/// (or the disk, or the database) is back: a node out of readiness gets no requests whose writes could tell it. The
/// write is a dedup key inserted and deleted in one transaction, which needs fresh pages as an ingest does, and goes
/// through the writer loop and the WAL flush like every acknowledged write.
/// </summary>
public sealed class StoreProbe(SqlDatabase database, StoreHealth health, TimeProvider time, ILogger<StoreProbe> logger) : BackgroundService
{
    /// <summary>Often enough that a node is back in rotation within a second or two of space returning; one tiny write each.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    // No group has an empty id, so the row can never be taken for a sender's delivery id.
    private const string ProbeSql = """
        INSERT INTO dedup (group_id, key, message_id, expires_at) VALUES ('', @key, '', 0);
        DELETE FROM dedup WHERE group_id = '' AND key = @key;
        """;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var key = $"store-probe/{Guid.NewGuid():N}";
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await health.FailingAsync(stoppingToken);
                await Task.Delay(Interval, time, stoppingToken);
                if (health.IsWritable)
                {
                    continue;
                }

                try
                {
                    await database.WriteAsync(context =>
                    {
                        var probe = context.Command(ProbeSql);
                        probe.Add("@key", key);
                        return probe.ExecuteNonQuery();
                    }, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A store fault is already counted by the health; anything else is worth a line, and the next round tries again.
                    if (!StoreFaults.IsWriteFault(ex))
                    {
                        Log.ProbeFailed(logger, ex);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }
}
