using System.Data.Common;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Queueing;

/// <summary>Which dead letters a redrive or a purge takes: those named, those that died in a time range, or all.</summary>
public sealed record DeadLetterSelection(IReadOnlyCollection<string>? MessageIds = null, DateTimeOffset? DeadAfter = null, DateTimeOffset? DeadBefore = null)
{
    public static DeadLetterSelection All { get; } = new();

    public static DeadLetterSelection Named(IReadOnlyCollection<string> messageIds) => new(messageIds);

    /// <summary>The SQL condition (ANDed to a query over dead messages) and its parameters.</summary>
    internal string Condition(SqlDatabase database) =>
        (MessageIds is null ? "" : $" AND id IN (SELECT value FROM {database.JsonStrings("@ids")})")
        + (DeadAfter is null ? "" : " AND completed_at >= @deadAfter")
        + (DeadBefore is null ? "" : " AND completed_at < @deadBefore");

    internal void Bind(DbCommand command)
    {
        if (MessageIds is not null)
        {
            command.Add("@ids", System.Text.Json.JsonSerializer.Serialize(MessageIds.Distinct(StringComparer.Ordinal)));
        }

        if (DeadAfter is { } after)
        {
            command.Add("@deadAfter", after.ToUnixTimeMilliseconds());
        }

        if (DeadBefore is { } before)
        {
            command.Add("@deadBefore", before.ToUnixTimeMilliseconds());
        }
    }
}
