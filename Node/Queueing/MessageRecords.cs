using ClusterQueue.Contracts;
using ClusterQueue.Node.Storage;
using Microsoft.Data.Sqlite;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The messages table of the embedded store, as both queues use it. The store queue keeps whole messages there;
/// the SQS queue keeps a record of each message without its body while SQS holds it (states below), so dedup keys,
/// status lookups, counters and dead letters are the same code and the same answers whichever queue runs.
/// <code>
///   state 1 accepting ──SQS accepted──▶ 0 queued ──▶ 2 delivered | 3 dead (with its body) ──▶ 4 redriving ──▶ 0 queued
///   (SQS queue only: 1 is reserved before the send, so a concurrent retry of the same delivery id waits for the
///   outcome; 4 keeps the body until SQS took the copy, and an outcome recorded meanwhile counts)
/// </code>
/// </summary>
public sealed class MessageRecords(SqliteDatabase database, TimeProvider time)
{
    public const int StateQueued = 0;
    public const int StateAccepting = 1;
    public const int StateDelivered = 2;
    public const int StateDead = 3;
    public const int StateRedriving = 4;

    /// <summary>Keeps one purge operation short so it never holds the writer for long.</summary>
    private const int PurgeChunk = 5000;

    public SqliteDatabase Database => database;

    /// <summary>
    /// Records a new message unless its delivery id was seen: with its body in <paramref name="state"/> queued (the
    /// store queue), or without it as accepting (the SQS queue, before the send). A delivery id still held by an
    /// accepting record is Busy until that record is older than <paramref name="acceptingBefore"/>, when its request
    /// is taken to have died and the new message replaces it.
    /// </summary>
    public Task<EnqueueResult> InsertAsync(NewMessage message, int state, DateTimeOffset acceptingBefore, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (message.DeduplicationKey is { } key)
            {
                var seen = context.Command("""
                    SELECT d.message_id, m.state, m.created_at FROM dedup d LEFT JOIN messages m ON m.id = d.message_id
                    WHERE d.group_id = $group AND d.key = $key AND d.expires_at > $now;
                    """);
                seen.Parameters.AddWithValue("$group", message.GroupId);
                seen.Parameters.AddWithValue("$key", key);
                seen.Parameters.AddWithValue("$now", now);
                string? firstId = null;
                var firstAccepting = false;
                var firstStale = false;
                using (var reader = seen.ExecuteReader())
                {
                    if (reader.Read())
                    {
                        firstId = reader.GetString(0);
                        firstAccepting = !reader.IsDBNull(1) && reader.GetInt32(1) == StateAccepting;
                        firstStale = firstAccepting && reader.GetInt64(2) < acceptingBefore.ToUnixTimeMilliseconds();
                    }
                }

                if (firstId is not null)
                {
                    if (!firstAccepting)
                    {
                        return new EnqueueResult(EnqueueOutcome.Duplicate, firstId);
                    }

                    if (!firstStale)
                    {
                        return new EnqueueResult(EnqueueOutcome.Busy, firstId);
                    }

                    Unreserve(context, firstId, message.GroupId);
                }
            }

            var insert = context.Command("""
                INSERT INTO messages (id, group_id, state, visible_at, content_type, body, size_bytes, created_at)
                SELECT $id, $group, $state, $now, $contentType, $body, $size, $now
                WHERE EXISTS (SELECT 1 FROM groups WHERE id = $group);
                """);
            insert.Parameters.AddWithValue("$id", message.Id);
            insert.Parameters.AddWithValue("$group", message.GroupId);
            insert.Parameters.AddWithValue("$state", state);
            insert.Parameters.AddWithValue("$now", now);
            insert.Parameters.AddWithValue("$contentType", (object?)message.ContentType ?? DBNull.Value);
            insert.Parameters.AddWithValue("$body", state == StateQueued ? message.Body : DBNull.Value);
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

    /// <summary>SQS accepted the message: its record becomes queued and its delivery id a duplicate for later requests.</summary>
    public Task ConfirmAsync(string messageId, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var confirm = context.Command($"UPDATE messages SET state = {StateQueued} WHERE id = $id AND state = {StateAccepting};");
            confirm.Parameters.AddWithValue("$id", messageId);
            return confirm.ExecuteNonQuery();
        }, cancellationToken);

    /// <summary>SQS refused the message: its record, delivery id and ingest count go, as if the request never came.</summary>
    public Task<bool> AbandonAsync(string messageId, string groupId, CancellationToken cancellationToken) =>
        database.WriteAsync(context => Unreserve(context, messageId, groupId), cancellationToken);

    private static bool Unreserve(SqliteWriteContext context, string messageId, string groupId)
    {
        var remove = context.Command($"DELETE FROM messages WHERE id = $id AND state = {StateAccepting};");
        remove.Parameters.AddWithValue("$id", messageId);
        if (remove.ExecuteNonQuery() == 0)
        {
            return false;
        }

        var key = context.Command("DELETE FROM dedup WHERE group_id = $group AND message_id = $id;");
        key.Parameters.AddWithValue("$group", groupId);
        key.Parameters.AddWithValue("$id", messageId);
        key.ExecuteNonQuery();
        Count(context, groupId, "ingested = ingested - 1");
        return true;
    }

    /// <summary>
    /// Records a finished message (delivered, or dead with <paramref name="deadBody"/>) whose body SQS held. The record
    /// is written even if it is missing (a reservation purged while SQS still had the message), and only once: a
    /// second outcome for the same message (a stale receipt, a re-delivery) changes nothing and returns false.
    /// </summary>
    public Task<bool> RecordOutcomeAsync(LeasedMessage message, int state, string? error, byte[]? deadBody, bool offloaded, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var record = context.Command($"""
                INSERT INTO messages (id, group_id, state, visible_at, attempts, last_error, content_type, body, size_bytes, created_at, completed_at, payload_offloaded)
                VALUES ($id, $group, $state, $now, $attempts, $error, $contentType, $body, $size, $created, $now, $offloaded)
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
                    last_error = coalesce(excluded.last_error, last_error), body = excluded.body,
                    completed_at = excluded.completed_at, payload_offloaded = excluded.payload_offloaded
                WHERE state IN ({StateQueued}, {StateAccepting}, {StateRedriving});
                """);
            record.Parameters.AddWithValue("$id", message.Id);
            record.Parameters.AddWithValue("$group", message.GroupId);
            record.Parameters.AddWithValue("$state", state);
            record.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
            record.Parameters.AddWithValue("$attempts", message.Attempt);
            record.Parameters.AddWithValue("$error", (object?)error ?? DBNull.Value);
            record.Parameters.AddWithValue("$contentType", (object?)message.ContentType ?? DBNull.Value);
            record.Parameters.AddWithValue("$body", (object?)deadBody ?? DBNull.Value);
            record.Parameters.AddWithValue("$size", message.Body.LongLength);
            record.Parameters.AddWithValue("$created", message.CreatedAt.ToUnixTimeMilliseconds());
            record.Parameters.AddWithValue("$offloaded", offloaded ? 1 : 0);
            if (record.ExecuteNonQuery() == 0)
            {
                return false;
            }

            Count(context, message.GroupId, state == StateDelivered ? "delivered = delivered + 1" : "failed = failed + 1, dead = dead + 1");
            return true;
        }, cancellationToken);

    /// <summary>Records a failed or throttled attempt of a message SQS holds: its attempts so far, last error and next visibility.</summary>
    public Task RecordAttemptAsync(LeasedMessage message, int attempts, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var record = context.Command($"UPDATE messages SET attempts = $attempts, last_error = $error, visible_at = $at WHERE id = $id AND state IN ({StateQueued}, {StateAccepting}, {StateRedriving});");
            record.Parameters.AddWithValue("$id", message.Id);
            record.Parameters.AddWithValue("$attempts", attempts);
            record.Parameters.AddWithValue("$error", error);
            record.Parameters.AddWithValue("$at", visibleAt.ToUnixTimeMilliseconds());
            record.ExecuteNonQuery();
            Count(context, message.GroupId, kind == RetryKind.Throttled ? "throttled = throttled + 1" : "failed = failed + 1");
            return 0;
        }, cancellationToken);

    /// <summary>When the group's earliest queued message is due (its retry time, else when it was queued); null when none is queued.</summary>
    public DateTimeOffset? EarliestQueuedAt(string groupId)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT MIN(visible_at) FROM messages WHERE group_id = $group AND state = {StateQueued};";
        command.Parameters.AddWithValue("$group", groupId);
        return command.ExecuteScalar() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    /// <summary>Up to <paramref name="limit"/> dead letters of the group (those named, or all), with their bodies, for a redrive.</summary>
    public IReadOnlyList<DeadBody> ReadDeadBodies(string groupId, IReadOnlyCollection<string>? messageIds, int limit)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        var named = messageIds is null ? "" : "AND id IN (SELECT value FROM json_each($ids))";
        command.CommandText = $"SELECT id, content_type, body, created_at, payload_offloaded FROM messages WHERE group_id = $group AND state = {StateDead} {named} ORDER BY completed_at, id LIMIT $limit;";
        command.Parameters.AddWithValue("$group", groupId);
        command.Parameters.AddWithValue("$limit", limit);
        if (messageIds is not null)
        {
            command.Parameters.AddWithValue("$ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
        }

        var bodies = new List<DeadBody>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            bodies.Add(new DeadBody(
                reader.GetString(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? [] : reader.GetFieldValue<byte[]>(2),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                reader.GetInt32(4) == 1));
        }

        return bodies;
    }

    /// <summary>
    /// Marks the dead letters named as being sent back (body kept) and returns those that were still dead. A call that
    /// finishes before <see cref="FinishRedriveAsync"/> is recorded like any other, since the copy is already in SQS.
    /// </summary>
    public Task<List<string>> BeginRedriveAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var begin = context.Command($"""
                UPDATE messages SET state = {StateRedriving}, visible_at = $now
                WHERE state = {StateDead} AND id IN (SELECT value FROM json_each($ids)) RETURNING id;
                """);
            begin.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
            begin.Parameters.AddWithValue("$ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
            var started = new List<string>();
            using var reader = begin.ExecuteReader();
            while (reader.Read())
            {
                started.Add(reader.GetString(0));
            }

            return started;
        }, cancellationToken);

    /// <summary>
    /// Ends a redrive: the messages SQS took (<paramref name="sent"/>) are queued again with their attempts reset and no
    /// body kept here; the others are dead letters again.
    /// </summary>
    public Task<int> FinishRedriveAsync(IReadOnlyCollection<string> sent, IReadOnlyCollection<string> refused, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var queued = context.Command($"""
                UPDATE messages SET state = {StateQueued}, visible_at = $now, attempts = 0, completed_at = NULL, body = NULL, lease_token = NULL
                WHERE state = {StateRedriving} AND id IN (SELECT value FROM json_each($ids));
                """);
            queued.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
            queued.Parameters.AddWithValue("$ids", System.Text.Json.JsonSerializer.Serialize(sent));
            queued.ExecuteNonQuery();

            var dead = context.Command($"UPDATE messages SET state = {StateDead} WHERE state = {StateRedriving} AND id IN (SELECT value FROM json_each($ids));");
            dead.Parameters.AddWithValue("$ids", System.Text.Json.JsonSerializer.Serialize(refused));
            dead.ExecuteNonQuery();
            return sent.Count;
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
            state == StateQueued ? visibleAt : null,
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

    /// <summary>
    /// Deletes expired dedup keys, delivered statuses older than <paramref name="deliveredBefore"/>, and reservations
    /// never confirmed since <paramref name="acceptingBefore"/> (the SQS queue's ingress died between its two writes;
    /// the sender was never acknowledged and will retry), a chunk of each at a time.
    /// </summary>
    public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, DateTimeOffset acceptingBefore, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var dedup = context.Command("DELETE FROM dedup WHERE (group_id, key) IN (SELECT group_id, key FROM dedup WHERE expires_at <= $now LIMIT $chunk);");
            dedup.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
            dedup.Parameters.AddWithValue("$chunk", PurgeChunk);
            var removed = dedup.ExecuteNonQuery();

            var delivered = context.Command("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE state = 2 AND completed_at < $before LIMIT $chunk);");
            delivered.Parameters.AddWithValue("$before", deliveredBefore.ToUnixTimeMilliseconds());
            delivered.Parameters.AddWithValue("$chunk", PurgeChunk);
            removed += delivered.ExecuteNonQuery();

            var stale = context.Command("SELECT id, group_id FROM messages WHERE state = 1 AND created_at < $before LIMIT $chunk;");
            stale.Parameters.AddWithValue("$before", acceptingBefore.ToUnixTimeMilliseconds());
            stale.Parameters.AddWithValue("$chunk", PurgeChunk);
            var abandoned = new List<(string Id, string GroupId)>();
            using (var reader = stale.ExecuteReader())
            {
                while (reader.Read())
                {
                    abandoned.Add((reader.GetString(0), reader.GetString(1)));
                }
            }

            foreach (var (id, groupId) in abandoned)
            {
                removed += Unreserve(context, id, groupId) ? 1 : 0;
            }

            // A redrive whose node died between marking and finishing: its messages are dead letters again (a copy
            // that did reach SQS is delivered once more, at least once, rather than a dead letter being lost).
            var unfinished = context.Command($"UPDATE messages SET state = {StateDead} WHERE state = {StateRedriving} AND visible_at < $before;");
            unfinished.Parameters.AddWithValue("$before", acceptingBefore.ToUnixTimeMilliseconds());
            removed += unfinished.ExecuteNonQuery();

            return removed;
        }, cancellationToken);

    internal static void Count(SqliteWriteContext context, string groupId, string increment)
    {
        var counter = context.Command($"UPDATE group_counters SET {increment} WHERE group_id = $group;");
        counter.Parameters.AddWithValue("$group", groupId);
        counter.ExecuteNonQuery();
    }
}

/// <summary>A dead letter's body as the store keeps it, or a note that the payload store has it.</summary>
public sealed record DeadBody(string Id, string? ContentType, byte[] Body, DateTimeOffset CreatedAt, bool Offloaded);
