using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Dashboard;

/// <summary>
/// The first bytes of a stored message body, for the dashboard. Kept is false once the body is gone from the table: a
/// delivered message drops it, and on the SQS queue a queued message's body is in SQS. Offloaded: in the payload store.
/// </summary>
public sealed record BodyPreview(string MessageId, string? ContentType, long SizeBytes, bool Kept, bool Offloaded, byte[] Bytes);

/// <summary>
/// The dashboard's reads of the messages table that the queue interface has no call for. Both queues keep dead
/// letters and message records in that table (see <see cref="MessageRecords"/>), so these answer on every backend.
/// </summary>
public sealed class DashboardQueries(MessageRecords records)
{
    private SqlDatabase Database => records.Database;

    /// <summary>Dead letters per group, one pass over the dead-letter index; groups with none are absent.</summary>
    public IReadOnlyDictionary<string, long> DeadLetterCounts()
    {
        using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT group_id, count(*) FROM messages WHERE state = {MessageRecords.StateDead} GROUP BY group_id;";
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    /// <summary>Up to <paramref name="maxBytes"/> of the message's body as stored; null when no such message is kept.</summary>
    public BodyPreview? ReadBody(string messageId, int maxBytes)
    {
        using var connection = Database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT content_type, size_bytes, payload_offloaded, substr(body, 1, @max) FROM messages WHERE id = @id;";
        command.Add("@id", messageId);
        command.Add("@max", maxBytes);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        var offloaded = !reader.IsDBNull(2) && Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture) != 0;
        var kept = !reader.IsDBNull(3);
        var bytes = kept ? (byte[])reader.GetValue(3) : [];
        return new BodyPreview(messageId, reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetInt64(1), kept, offloaded && bytes.Length == 0, bytes);
    }
}
