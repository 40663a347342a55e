using System.Security.Cryptography;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Storage;
using Microsoft.Data.Sqlite;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The queue as a table of the embedded store. Every write goes through <see cref="SqliteDatabase"/>'s single writer,
/// so concurrent ingest requests, leases and acks share commits. A lease token (random per lease call) fences all
/// changes to a leased message: see <see cref="IMessageQueue"/> for the lifecycle.
/// </summary>
public sealed class SqliteMessageQueue(SqliteDatabase database, TimeProvider time) : IMessageQueue
{
    private const int StatePending = 0;
    private const int StateDelivered = 2;
    private const int StateDead = 3;

    /// <summary>Keeps one purge operation short so it never holds the writer for long.</summary>
    private const int PurgeChunk = 5000;

    public Task<EnqueueResult> EnqueueAsync(NewMessage message, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (message.DeduplicationKey is { } key)
            {
                var seen = context.Command("SELECT message_id FROM dedup WHERE group_id = $group AND key = $key AND expires_at > $now;");
                seen.Parameters.AddWithValue("$group", message.GroupId);
                seen.Parameters.AddWithValue("$key", key);
                seen.Parameters.AddWithValue("$now", now);
                if (seen.ExecuteScalar() is string firstId)
                {
                    return new EnqueueResult(EnqueueOutcome.Duplicate, firstId);
                }
            }

            var insert = context.Command("""
                INSERT INTO messages (id, group_id, state, visible_at, content_type, body, size_bytes, created_at)
                SELECT $id, $group, 0, $now, $contentType, $body, $size, $now
                WHERE EXISTS (SELECT 1 FROM groups WHERE id = $group);
                """);
            insert.Parameters.AddWithValue("$id", message.Id);
            insert.Parameters.AddWithValue("$group", message.GroupId);
            insert.Parameters.AddWithValue("$now", now);
            insert.Parameters.AddWithValue("$contentType", (object?)message.ContentType ?? DBNull.Value);
            insert.Parameters.AddWithValue("$body", message.Body);
            insert.Parameters.AddWithValue("$size", message.Body.LongLength);
            if (insert.ExecuteNonQuery() == 0)
            {
                return new EnqueueResult(EnqueueOutcome.GroupNotFound, message.Id);
            }

            if (message.DeduplicationKey is { } newKey)
            {
                var remember = context.Command("INSERT OR REPLACE INTO dedup (group_id, key, message_id, expires_at) VALUES ($group, $key, $id, $expires);");
                remember.Parameters.AddWithValue("$group", message.GroupId);
                remember.Parameters.AddWithValue("$key", newKey);
                remember.Parameters.AddWithValue("$id", message.Id);
                remember.Parameters.AddWithValue("$expires", message.DeduplicationExpiresAt.ToUnixTimeMilliseconds());
                remember.ExecuteNonQuery();
            }

            Count(context, message.GroupId, "ingested = ingested + 1");
            return new EnqueueResult(EnqueueOutcome.Accepted, message.Id);
        }, cancellationToken);

    public Task<LeaseBatch> LeaseAsync(string groupId, int max, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var now = time.GetUtcNow();
            var token = RandomNumberGenerator.GetInt32(1, int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
            var lease = context.Command("""
                UPDATE messages SET visible_at = $until, lease_token = $token, attempts = attempts + 1
                WHERE seq IN (
                    SELECT seq FROM messages
                    WHERE group_id = $group AND state = 0 AND visible_at <= $now
                    ORDER BY visible_at, seq LIMIT $max)
                RETURNING seq, id, attempts, content_type, body, created_at;
                """);
            lease.Parameters.AddWithValue("$until", (now + leaseDuration).ToUnixTimeMilliseconds());
            lease.Parameters.AddWithValue("$token", token);
            lease.Parameters.AddWithValue("$group", groupId);
            lease.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
            lease.Parameters.AddWithValue("$max", max);

            var leased = new List<(long Seq, LeasedMessage Message)>();
            var receipt = token.ToString(System.Globalization.CultureInfo.InvariantCulture);
            using (var reader = lease.ExecuteReader())
            {
                while (reader.Read())
                {
                    leased.Add((reader.GetInt64(0), new LeasedMessage(
                        reader.GetString(1),
                        groupId,
                        receipt,
                        reader.GetInt32(2),
                        reader.IsDBNull(3) ? null : reader.GetString(3),
                        reader.IsDBNull(4) ? [] : reader.GetFieldValue<byte[]>(4),
                        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)))));
                }
            }

            leased.Sort((a, b) => a.Seq.CompareTo(b.Seq));
            var next = context.Command("SELECT MIN(visible_at) FROM messages WHERE group_id = $group AND state = 0;");
            next.Parameters.AddWithValue("$group", groupId);
            var nextVisible = next.ExecuteScalar() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
            return new LeaseBatch(leased.ConvertAll(l => l.Message), nextVisible);
        }, cancellationToken);

    public Task<bool> ExtendAsync(LeasedMessage message, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        ChangeLeased(message, "visible_at = $at", time.GetUtcNow() + leaseDuration, null, null, cancellationToken);

    public Task<bool> CompleteAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        ChangeLeased(
            message,
            $"state = {StateDelivered}, body = NULL, lease_token = NULL, completed_at = $at",
            time.GetUtcNow(),
            null,
            "delivered = delivered + 1",
            cancellationToken);

    public Task<bool> RetryAsync(LeasedMessage message, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken) =>
        ChangeLeased(
            message,
            kind == RetryKind.Throttled
                ? "visible_at = $at, lease_token = NULL, last_error = $error, attempts = attempts - 1"
                : "visible_at = $at, lease_token = NULL, last_error = $error",
            visibleAt,
            error,
            kind == RetryKind.Throttled ? "throttled = throttled + 1" : "failed = failed + 1",
            cancellationToken);

    public Task<bool> ReleaseAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        ChangeLeased(message, "visible_at = $at, lease_token = NULL, attempts = attempts - 1", time.GetUtcNow(), null, null, cancellationToken);

    public Task<bool> DeadLetterAsync(LeasedMessage message, string error, CancellationToken cancellationToken) =>
        ChangeLeased(
            message,
            $"state = {StateDead}, lease_token = NULL, last_error = $error, completed_at = $at",
            time.GetUtcNow(),
            error,
            "failed = failed + 1, dead = dead + 1",
            cancellationToken);

    private Task<bool> ChangeLeased(LeasedMessage message, string set, DateTimeOffset at, string? error, string? counter, CancellationToken cancellationToken)
    {
        var token = long.Parse(message.Receipt, System.Globalization.CultureInfo.InvariantCulture);
        return database.WriteAsync(context =>
        {
            var update = context.Command($"UPDATE messages SET {set} WHERE id = $id AND lease_token = $token AND state = {StatePending};");
            update.Parameters.AddWithValue("$id", message.Id);
            update.Parameters.AddWithValue("$token", token);
            update.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
            if (error is not null)
            {
                update.Parameters.AddWithValue("$error", error);
            }

            var changed = update.ExecuteNonQuery() == 1;
            if (changed && counter is not null)
            {
                Count(context, message.GroupId, counter);
            }

            return changed;
        }, cancellationToken);
    }

    public Task<int> RedriveAsync(string groupId, IReadOnlyCollection<string>? messageIds, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            const string Redrive = "UPDATE messages SET state = 0, visible_at = $now, attempts = 0, completed_at = NULL, lease_token = NULL WHERE group_id = $group AND state = 3";
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (messageIds is null)
            {
                var all = context.Command(Redrive + ";");
                all.Parameters.AddWithValue("$now", now);
                all.Parameters.AddWithValue("$group", groupId);
                return all.ExecuteNonQuery();
            }

            var redriven = 0;
            foreach (var id in messageIds.Distinct(StringComparer.Ordinal))
            {
                var one = context.Command(Redrive + " AND id = $id;");
                one.Parameters.AddWithValue("$now", now);
                one.Parameters.AddWithValue("$group", groupId);
                one.Parameters.AddWithValue("$id", id);
                redriven += one.ExecuteNonQuery();
            }

            return redriven;
        }, cancellationToken);

    public Task<DeadLetterList> ListDeadLettersAsync(string groupId, string? after, int limit, CancellationToken cancellationToken)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();

        // Paged by (dead time, message id) so the cursor stays stable while new dead letters arrive.
        command.CommandText = """
            SELECT id, attempts, last_error, created_at, completed_at, content_type, size_bytes FROM messages
            WHERE group_id = $group AND state = 3
              AND ($after IS NULL OR completed_at > $afterAt OR (completed_at = $afterAt AND id > $after))
            ORDER BY completed_at, id LIMIT $limit;
            """;
        command.Parameters.AddWithValue("$group", groupId);
        command.Parameters.AddWithValue("$after", (object?)after ?? DBNull.Value);
        command.Parameters.AddWithValue("$afterAt", after is null ? DBNull.Value : DeadAtOf(connection, after));
        command.Parameters.AddWithValue("$limit", limit + 1);
        var letters = new List<DeadLetter>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                letters.Add(new DeadLetter(
                    reader.GetString(0),
                    groupId,
                    reader.GetInt32(1),
                    reader.IsDBNull(2) ? null : reader.GetString(2),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.GetInt64(6)));
            }
        }

        var more = letters.Count > limit;
        if (more)
        {
            letters.RemoveAt(letters.Count - 1);
        }

        return Task.FromResult(new DeadLetterList(letters, more ? letters[^1].MessageId : null));
    }

    /// <summary>Where the page after <paramref name="messageId"/> starts: its dead time, or the end when it is no longer a dead letter (redriven, purged).</summary>
    private static object DeadAtOf(SqliteConnection connection, string messageId)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT completed_at FROM messages WHERE id = $id AND state = 3;";
        command.Parameters.AddWithValue("$id", messageId);
        return command.ExecuteScalar() is long deadAt ? deadAt : long.MaxValue;
    }

    public Task<MessageStatus?> GetStatusAsync(string messageId, CancellationToken cancellationToken)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, group_id, state, attempts, last_error, created_at, visible_at, completed_at, lease_token
            FROM messages WHERE id = $id;
            """;
        command.Parameters.AddWithValue("$id", messageId);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return Task.FromResult<MessageStatus?>(null);
        }

        var state = reader.GetInt32(2);
        var visibleAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6));
        var leased = !reader.IsDBNull(8) && visibleAt > time.GetUtcNow();
        var name = state switch
        {
            StateDelivered => "delivered",
            StateDead => "dead",
            _ when leased => "processing",
            _ => "queued",
        };
        return Task.FromResult<MessageStatus?>(new MessageStatus(
            reader.GetString(0),
            reader.GetString(1),
            name,
            reader.GetInt32(3),
            reader.IsDBNull(4) ? null : reader.GetString(4),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
            state == StatePending ? visibleAt : null,
            reader.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7))));
    }

    public Task<QueueCounts?> GetCountsAsync(string groupId, CancellationToken cancellationToken)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT (SELECT count(*) FROM messages WHERE group_id = $group AND state = 0),
                   (SELECT count(*) FROM messages WHERE group_id = $group AND state = 3),
                   ingested, delivered, failed, dead, throttled
            FROM group_counters WHERE group_id = $group;
            """;
        command.Parameters.AddWithValue("$group", groupId);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return Task.FromResult<QueueCounts?>(null);
        }

        return Task.FromResult<QueueCounts?>(new QueueCounts(
            reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6)));
    }

    public Task<IReadOnlyDictionary<string, long>> GetDepthsAsync(CancellationToken cancellationToken)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_id, count(*) FROM messages WHERE state = 0 GROUP BY group_id;";
        var depths = new Dictionary<string, long>(StringComparer.Ordinal);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            depths[reader.GetString(0)] = reader.GetInt64(1);
        }

        return Task.FromResult<IReadOnlyDictionary<string, long>>(depths);
    }

    public Task<IReadOnlyList<string>> GroupsWithPendingAsync(CancellationToken cancellationToken)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();

        // A loose index scan: one index seek per group instead of reading every pending message.
        command.CommandText = "SELECT group_id FROM messages WHERE state = 0 AND group_id > $after ORDER BY group_id LIMIT 1;";
        var after = command.Parameters.AddWithValue("$after", string.Empty);
        var groups = new List<string>();
        while (command.ExecuteScalar() is string group)
        {
            cancellationToken.ThrowIfCancellationRequested();
            groups.Add(group);
            after.Value = group;
        }

        return Task.FromResult<IReadOnlyList<string>>(groups);
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var dedup = context.Command("DELETE FROM dedup WHERE (group_id, key) IN (SELECT group_id, key FROM dedup WHERE expires_at <= $now LIMIT $chunk);");
            dedup.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
            dedup.Parameters.AddWithValue("$chunk", PurgeChunk);
            var removed = dedup.ExecuteNonQuery();

            var delivered = context.Command("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE state = 2 AND completed_at < $before LIMIT $chunk);");
            delivered.Parameters.AddWithValue("$before", deliveredBefore.ToUnixTimeMilliseconds());
            delivered.Parameters.AddWithValue("$chunk", PurgeChunk);
            return removed + delivered.ExecuteNonQuery();
        }, cancellationToken);

    private static void Count(SqliteWriteContext context, string groupId, string increment)
    {
        var counter = context.Command($"UPDATE group_counters SET {increment} WHERE group_id = $group;");
        counter.Parameters.AddWithValue("$group", groupId);
        counter.ExecuteNonQuery();
    }
}
