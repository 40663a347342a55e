using ClusterQueue.Contracts;
using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Storage;
using System.Data.Common;

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
public sealed class MessageRecords
{
    private readonly SqlDatabase _database;
    private readonly TimeProvider _time;
    private readonly SharedWrite<Insertion, EnqueueResult> _insert;

    public MessageRecords(SqlDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
        _insert = new SharedWrite<Insertion, EnqueueResult>(InsertAll);
    }

    public const int StateQueued = 0;
    public const int StateAccepting = 1;
    public const int StateDelivered = 2;
    public const int StateDead = 3;
    public const int StateRedriving = 4;

    /// <summary>Keeps one purge operation short so it never holds the writer for long.</summary>
    private const int PurgeChunk = 5000;

    public SqlDatabase Database => _database;

    /// <summary>
    /// Records a new message unless its delivery id was seen: with its body in <paramref name="state"/> queued (the
    /// store queue), or without it as accepting (the SQS queue, before the send). A delivery id still held by an
    /// accepting record is Busy until that record is older than <paramref name="acceptingBefore"/>, when its request
    /// is taken to have died and the new message replaces it.
    /// </summary>
    public Task<EnqueueResult> InsertAsync(NewMessage message, int state, DateTimeOffset acceptingBefore, CancellationToken cancellationToken) =>
        _database.WriteAsync(_insert, new Insertion(message, state, acceptingBefore), cancellationToken);

    private readonly record struct Insertion(NewMessage Message, int State, DateTimeOffset AcceptingBefore);

    /// <summary>
    /// Every insertion waiting in one writer batch. A message with a delivery id needs its own look-up first, and a
    /// delayed one its own visibility; the others (most of a busy queue's traffic) go in multi-row inserts, which on PostgreSQL saves a round trip per
    /// message and on SQLite a statement per message.
    /// </summary>
    private IReadOnlyList<EnqueueResult> InsertAll(SqlWriteContext context, IReadOnlyList<Insertion> insertions)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var results = new EnqueueResult[insertions.Count];
        var plain = new List<int>(insertions.Count);
        for (var i = 0; i < insertions.Count; i++)
        {
            var (message, state, acceptingBefore) = insertions[i];
            if (message.DeduplicationKey is null && message.NotBefore is null && !message.WantsResult)
            {
                plain.Add(i);
            }
            else
            {
                results[i] = InsertOne(context, message, state, acceptingBefore, now);
            }
        }

        for (var done = 0; done < plain.Count;)
        {
            var rows = InsertRowsSql.ChunkSize(plain.Count - done);
            InsertRows(context, insertions, plain.GetRange(done, rows), results, now);
            done += rows;
        }

        return results;
    }

    private static void InsertRows(SqlWriteContext context, IReadOnlyList<Insertion> insertions, List<int> rows, EnqueueResult[] results, long now)
    {
        var insert = context.Command(InsertRowsSql.For(rows.Count));
        insert.Add("@now", now);
        for (var r = 0; r < rows.Count; r++)
        {
            var (message, state, _) = insertions[rows[r]];
            insert.Add($"@i{r}", message.Id);
            insert.Add($"@g{r}", message.GroupId);
            insert.Add($"@s{r}", state);
            insert.AddText($"@t{r}", message.ContentType);
            insert.AddBytes($"@b{r}", state == StateQueued ? message.Body : null);
            insert.Add($"@z{r}", message.Body.LongLength);
            insert.AddText($"@p{r}", message.TraceParent);
        }

        var inserted = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = insert.ExecuteReader())
        {
            while (reader.Read())
            {
                inserted.Add(reader.GetString(0));
            }
        }

        foreach (var row in rows)
        {
            var message = insertions[row].Message;
            if (inserted.Contains(message.Id))
            {
                context.Count(message.GroupId, CounterChange.Ingest);
                results[row] = new EnqueueResult(EnqueueOutcome.Accepted, message.Id);
            }
            else
            {
                results[row] = new EnqueueResult(EnqueueOutcome.GroupNotFound, message.Id);
            }
        }
    }

    private EnqueueResult InsertOne(SqlWriteContext context, NewMessage message, int state, DateTimeOffset acceptingBefore, long now)
    {
        if (message.DeduplicationKey is { } key)
        {
            var seen = context.Command("""
                SELECT d.message_id, m.state, m.created_at FROM dedup d LEFT JOIN messages m ON m.id = d.message_id
                WHERE d.group_id = @group AND d.key = @key AND d.expires_at > @now;
                """);
            seen.Add("@group", message.GroupId);
            seen.Add("@key", key);
            seen.Add("@now", now);
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
            INSERT INTO messages (id, group_id, state, visible_at, content_type, body, size_bytes, created_at, wants_result, trace_parent)
            SELECT @id, @group, @state, @visible, @contentType, @body, @size, @now, @wantsResult, @traceParent
            WHERE EXISTS (SELECT 1 FROM groups WHERE id = @group);
            """);
        insert.Add("@id", message.Id);
        insert.Add("@group", message.GroupId);
        insert.Add("@state", state);
        insert.Add("@now", now);
        insert.Add("@visible", Math.Max(now, message.NotBefore?.ToUnixTimeMilliseconds() ?? now));
        insert.Add("@wantsResult", message.WantsResult ? 1 : 0);
        insert.AddText("@contentType", message.ContentType);
        insert.AddBytes("@body", state == StateQueued ? message.Body : null);
        insert.Add("@size", message.Body.LongLength);
        insert.AddText("@traceParent", message.TraceParent);
        if (insert.ExecuteNonQuery() == 0)
        {
            return new EnqueueResult(EnqueueOutcome.GroupNotFound, message.Id);
        }

        if (message.DeduplicationKey is { } newKey)
        {
            var remember = context.Command("""
                INSERT INTO dedup (group_id, key, message_id, expires_at) VALUES (@group, @key, @id, @expires)
                ON CONFLICT (group_id, key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at;
                """);
            remember.Add("@group", message.GroupId);
            remember.Add("@key", newKey);
            remember.Add("@id", message.Id);
            remember.Add("@expires", message.DeduplicationExpiresAt.ToUnixTimeMilliseconds());
            remember.ExecuteNonQuery();
        }

        context.Count(message.GroupId, CounterChange.Ingest);
        return new EnqueueResult(EnqueueOutcome.Accepted, message.Id);
    }

    /// <summary>The newest attempt records kept per message: enough to see a pattern, bounded for a message throttled for days.</summary>
    private const int KeptAttempts = 100;

    /// <summary>Adds one undelivered attempt to the message's history, in the caller's transaction.</summary>
    internal static void RecordAttemptRow(SqlWriteContext context, LeasedMessage message, int attempt, AttemptReport report, string error, string outcome)
    {
        var messageId = message.Id;
        var insert = context.Command("""
            INSERT INTO message_attempts (message_id, step, attempt, started_at, duration_ms, status, error, outcome)
            VALUES (@id, @step, @attempt, @started, @duration, @status, @error, @outcome);
            """);
        insert.Add("@id", messageId);
        insert.Add("@step", message.Step);
        insert.Add("@attempt", attempt);
        insert.Add("@started", report.StartedAt.ToUnixTimeMilliseconds());
        insert.Add("@duration", (long)report.Duration.TotalMilliseconds);
        insert.Add("@status", report.Status, System.Data.DbType.Int32);
        insert.AddText("@error", error);
        insert.AddText("@outcome", outcome);
        insert.ExecuteNonQuery();
        // Each life of a message ends dead or delivered, so trimming at death too bounds a message redriven many times.
        if (attempt > KeptAttempts || outcome != "failed")
        {
            var trim = context.Command($"""
                DELETE FROM message_attempts WHERE message_id = @id AND seq <= (
                    SELECT seq FROM message_attempts WHERE message_id = @id ORDER BY seq DESC LIMIT 1 OFFSET {KeptAttempts});
                """);
            trim.Add("@id", messageId);
            trim.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// Deletes the histories of messages deleted in the same transaction: every path that deletes messages calls this,
    /// so no history outlives its message and nothing has to scan for orphans.
    /// </summary>
    internal static void ForgetAttempts(SqlWriteContext context, SqlDatabase database, IReadOnlyCollection<string> messageIds)
    {
        if (messageIds.Count == 0)
        {
            return;
        }

        var forget = context.Command($"DELETE FROM message_attempts WHERE message_id IN (SELECT value FROM {database.JsonStrings("@ids")});");
        forget.Add("@ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
        forget.ExecuteNonQuery();
    }

    /// <summary>The attempt histories of the messages named, oldest attempt first.</summary>
    internal Dictionary<string, List<AttemptRecord>> ReadAttempts(DbConnection connection, IReadOnlyCollection<string> messageIds)
    {
        var histories = new Dictionary<string, List<AttemptRecord>>(StringComparer.Ordinal);
        if (messageIds.Count == 0)
        {
            return histories;
        }

        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT message_id, attempt, started_at, duration_ms, status, error, outcome, step FROM message_attempts
            WHERE message_id IN (SELECT value FROM {_database.JsonStrings("@ids")}) ORDER BY message_id, seq;
            """;
        command.Add("@ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var id = reader.GetString(0);
            if (!histories.TryGetValue(id, out var history))
            {
                histories[id] = history = [];
            }

            history.Add(new AttemptRecord(
                reader.GetInt32(1),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                reader.GetInt64(3),
                reader.IsDBNull(4) ? null : reader.GetInt32(4),
                reader.GetString(5),
                reader.GetString(6))
            {
                Step = reader.GetInt32(7),
            });
        }

        return histories;
    }

    /// <summary>Tells other nodes at commit that a waited-for message has its outcome (PostgreSQL; a no-op alone).</summary>
    internal static void AnnounceOutcome(SqlWriteContext context, SqlDatabase database, string messageId)
    {
        if (database.OutcomeNotification is { } notify)
        {
            var command = context.Command(notify);
            command.Add("@outcome_id", messageId);
            command.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// Moves a message SQS holds from step <see cref="LeasedMessage.Step"/> to the next, with its cursor, only if the
    /// record is still on that step: of two copies continuing the same step, one advances the chain. A redrive's copy may
    /// be called before the redrive marks its record queued; its continuation counts, as its outcome would.
    /// </summary>
    public Task<bool> AdvanceStepAsync(LeasedMessage message, string cursor, int status, CancellationToken cancellationToken) =>
        _database.WriteAsync(
            context => AdvanceStep(
                context,
                message,
                cursor,
                status,
                _time.GetUtcNow(),
                $"step = @step AND state IN ({StateQueued}, {StateRedriving})",
                command => command.Add("@step", message.Step),
                "step_sent = 0"),
            cancellationToken);

    /// <summary>
    /// Moves the message's record to its next step, in the caller's transaction, if <paramref name="condition"/> still
    /// holds: the finished step joins the chain, the cursor waits for the next call, and the attempts start again.
    /// </summary>
    internal static bool AdvanceStep(SqlWriteContext context, LeasedMessage message, string cursor, int status, DateTimeOffset now, string condition, Action<DbCommand> bind, string alsoSet)
    {
        var read = context.Command($"SELECT steps FROM messages WHERE id = @id AND {condition};");
        read.Add("@id", message.Id);
        bind(read);
        string? finished;
        using (var reader = read.ExecuteReader())
        {
            if (!reader.Read())
            {
                return false;
            }

            finished = reader.IsDBNull(0) ? null : reader.GetString(0);
        }

        var next = context.Command($"""
            UPDATE messages SET step = step + 1, cursor = @cursor, steps = @steps, attempts = 0, throttles = 0, last_error = NULL,
                visible_at = @now, {alsoSet}
            WHERE id = @id AND {condition};
            """);
        next.Add("@id", message.Id);
        bind(next);
        next.AddText("@cursor", cursor);
        next.AddText("@steps", MessageSteps.Append(finished, new MessageStep(message.Step, cursor, status, now)));
        next.Add("@now", now.ToUnixTimeMilliseconds());
        return next.ExecuteNonQuery() == 1;
    }

    /// <summary>
    /// The copy of <paramref name="step"/> is in SQS: a copy found behind the record need not send it again. Only while
    /// the record is still on that step; a later step has its own mark.
    /// </summary>
    public Task MarkStepSentAsync(string messageId, int step, CancellationToken cancellationToken) =>
        _database.WriteAsync(context =>
        {
            var command = context.Command("UPDATE messages SET step_sent = 1 WHERE id = @id AND step = @step;");
            command.Add("@id", messageId);
            command.Add("@step", step);
            return command.ExecuteNonQuery();
        }, cancellationToken);

    /// <summary>
    /// The step each message's record is on, its cursor, whether that step's copy was sent, and whether the message is
    /// still queued; a message without a record is absent. One read for a whole receive, so checking every received copy
    /// costs a query per batch, not per message.
    /// </summary>
    public Dictionary<string, RecordedStep> ReadSteps(IReadOnlyCollection<string> messageIds)
    {
        var steps = new Dictionary<string, RecordedStep>(messageIds.Count, StringComparer.Ordinal);
        if (messageIds.Count == 0)
        {
            return steps;
        }

        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, step, cursor, step_sent, state, throttles FROM messages WHERE id IN (SELECT value FROM {_database.JsonStrings("@ids")});";
        command.Add("@ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            steps[reader.GetString(0)] = new RecordedStep(reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3) == 1, reader.GetInt32(4) == StateQueued, reader.GetInt32(5));
        }

        return steps;
    }

    /// <summary>SQS accepted the message: its record becomes queued and its delivery id a duplicate for later requests.</summary>
    public Task ConfirmAsync(string messageId, CancellationToken cancellationToken) =>
        _database.WriteAsync(context =>
        {
            var confirm = context.Command($"UPDATE messages SET state = {StateQueued} WHERE id = @id AND state = {StateAccepting};");
            confirm.Add("@id", messageId);
            return confirm.ExecuteNonQuery();
        }, cancellationToken);

    /// <summary>SQS refused the message: its record, delivery id and ingest count go, as if the request never came.</summary>
    public Task<bool> AbandonAsync(string messageId, string groupId, CancellationToken cancellationToken) =>
        _database.WriteAsync(context => Unreserve(context, messageId, groupId), cancellationToken);

    private bool Unreserve(SqlWriteContext context, string messageId, string groupId)
    {
        var remove = context.Command($"DELETE FROM messages WHERE id = @id AND state = {StateAccepting};");
        remove.Add("@id", messageId);
        if (remove.ExecuteNonQuery() == 0)
        {
            return false;
        }

        var key = context.Command("DELETE FROM dedup WHERE group_id = @group AND message_id = @id;");
        key.Add("@group", groupId);
        key.Add("@id", messageId);
        key.ExecuteNonQuery();

        // A reservation can carry attempts: SQS may hand the message out before its record is confirmed.
        ForgetAttempts(context, _database, [messageId]);
        context.Count(groupId, CounterChange.Unreserve);
        return true;
    }

    /// <summary>
    /// Records a finished message (delivered, or dead with <paramref name="deadBody"/>) whose body SQS held. The record
    /// is written even if it is missing (a reservation purged while SQS still had the message), and only once: a
    /// second outcome for the same message (a stale receipt, a re-delivery) changes nothing and returns false.
    /// </summary>
    public Task<bool> RecordOutcomeAsync(LeasedMessage message, int state, string? error, byte[]? deadBody, bool offloaded, CancellationToken cancellationToken, DeliveryResult? result = null, AttemptReport? attempt = null) =>
        _database.WriteAsync(context =>
        {
            var record = context.Command($"""
                INSERT INTO messages (id, group_id, state, visible_at, attempts, last_error, content_type, body, size_bytes, created_at, completed_at, payload_offloaded,
                                      wants_result, result_status, result_content_type, result_body)
                VALUES (@id, @group, @state, @now, @attempts, @error, @contentType, @body, @size, @created, @now, @offloaded,
                        @wantsResult, @resultStatus, @resultContentType, @resultBody)
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
                    last_error = coalesce(excluded.last_error, messages.last_error), body = excluded.body,
                    completed_at = excluded.completed_at, payload_offloaded = excluded.payload_offloaded,
                    result_status = excluded.result_status, result_content_type = excluded.result_content_type, result_body = excluded.result_body
                WHERE messages.state IN ({StateQueued}, {StateAccepting}, {StateRedriving});
                """);
            record.Add("@wantsResult", message.WantsResult ? 1 : 0);
            record.Add("@resultStatus", result?.Status, System.Data.DbType.Int32);
            record.AddText("@resultContentType", result?.ContentType);
            record.AddBytes("@resultBody", result?.Body);
            record.Add("@id", message.Id);
            record.Add("@group", message.GroupId);
            record.Add("@state", state);
            record.Add("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            record.Add("@attempts", message.Attempt);
            record.AddText("@error", error);
            record.AddText("@contentType", message.ContentType);
            record.AddBytes("@body", deadBody);
            record.Add("@size", message.Body.LongLength);
            record.Add("@created", message.CreatedAt.ToUnixTimeMilliseconds());
            record.Add("@offloaded", offloaded ? 1 : 0);
            if (record.ExecuteNonQuery() == 0)
            {
                return false;
            }

            context.Count(message.GroupId, state == StateDelivered ? CounterChange.Delivery : CounterChange.Death);
            if (attempt is not null && state == StateDead)
            {
                RecordAttemptRow(context, message, message.Attempt, attempt, error ?? "", "dead");
            }

            if (message.WantsResult)
            {
                AnnounceOutcome(context, _database, message.Id);
            }

            return true;
        }, cancellationToken);

    /// <summary>Records a failed or throttled attempt of a message SQS holds: its attempts so far, last error, next visibility and run of throttles.</summary>
    public Task RecordAttemptAsync(LeasedMessage message, int attempts, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken, AttemptReport? report = null) =>
        _database.WriteAsync(context =>
        {
            var record = context.Command($"UPDATE messages SET attempts = @attempts, last_error = @error, visible_at = @at, {ThrottlesAfter(kind)} WHERE id = @id AND state IN ({StateQueued}, {StateAccepting}, {StateRedriving});");
            record.Add("@id", message.Id);
            record.Add("@attempts", attempts);
            record.Add("@error", error);
            record.Add("@at", visibleAt.ToUnixTimeMilliseconds());

            // A record purged meanwhile gets no history: it would have no message to be deleted with.
            if (record.ExecuteNonQuery() > 0 && report is not null)
            {
                RecordAttemptRow(context, message, message.Attempt, report, error, OutcomeOf(kind));
            }
            context.Count(message.GroupId, CounterOf(kind));
            return 0;
        }, cancellationToken);

    /// <summary>How an attempt retried as <paramref name="kind"/> changes the message's run of throttles: the SQL to set it.</summary>
    internal static string ThrottlesAfter(RetryKind kind) => kind == RetryKind.Failed ? "throttles = 0" : "throttles = throttles + 1";

    /// <summary>The attempt's outcome in its history: "failed" when it counted against maxAttempts, "throttled" when not.</summary>
    internal static string OutcomeOf(RetryKind kind) => kind == RetryKind.Throttled ? "throttled" : "failed";

    /// <summary>The group's counters for a retried attempt: a counted throttle is both a throttle and a failed attempt.</summary>
    internal static CounterChange CounterOf(RetryKind kind) => kind switch
    {
        RetryKind.Throttled => CounterChange.Throttle,
        RetryKind.ThrottledCounted => CounterChange.Throttle + CounterChange.Failure,
        _ => CounterChange.Failure,
    };

    /// <summary>When the group's earliest queued message is due (its retry time, else when it was queued); null when none is queued.</summary>
    public DateTimeOffset? EarliestQueuedAt(string groupId)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT MIN(visible_at) FROM messages WHERE group_id = @group AND state = {StateQueued};";
        command.Add("@group", groupId);
        return command.ExecuteScalar() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    /// <summary>Up to <paramref name="limit"/> dead letters of the group (those named, or all), with their bodies, for a redrive.</summary>
    public IReadOnlyList<DeadBody> ReadDeadBodies(string groupId, DeadLetterSelection selection, int limit)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, content_type, body, created_at, payload_offloaded, step, cursor, wants_result, trace_parent FROM messages WHERE group_id = @group AND state = {StateDead} {selection.Condition(_database)} ORDER BY completed_at, id LIMIT @limit;";
        command.Add("@group", groupId);
        command.Add("@limit", limit);
        selection.Bind(command);

        var bodies = new List<DeadBody>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            bodies.Add(new DeadBody(
                reader.GetString(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? [] : reader.GetFieldValue<byte[]>(2),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                reader.GetInt32(4) == 1)
            {
                Step = reader.GetInt32(5),
                Cursor = reader.IsDBNull(6) ? null : reader.GetString(6),
                WantsResult = reader.GetInt32(7) == 1,
                TraceParent = reader.IsDBNull(8) ? null : reader.GetString(8),
            });
        }

        return bodies;
    }

    /// <summary>
    /// Marks the dead letters named as being sent back (body kept) and returns those that were still dead. A call that
    /// finishes before <see cref="FinishRedriveAsync"/> is recorded like any other, since the copy is already in SQS.
    /// </summary>
    public Task<List<string>> BeginRedriveAsync(IReadOnlyCollection<string> messageIds, CancellationToken cancellationToken) =>
        _database.WriteAsync(context =>
        {
            var begin = context.Command($"""
                UPDATE messages SET state = {StateRedriving}, visible_at = @now
                WHERE state = {StateDead} AND id IN (SELECT value FROM {_database.JsonStrings("@ids")}) RETURNING id;
                """);
            begin.Add("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            begin.Add("@ids", System.Text.Json.JsonSerializer.Serialize(messageIds));
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
        _database.WriteAsync(context =>
        {
            var queued = context.Command($"""
                UPDATE messages SET state = {StateQueued}, visible_at = @now, attempts = 0, throttles = 0, completed_at = NULL, body = NULL, lease_token = NULL
                WHERE state = {StateRedriving} AND id IN (SELECT value FROM {_database.JsonStrings("@ids")});
                """);
            queued.Add("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            queued.Add("@ids", System.Text.Json.JsonSerializer.Serialize(sent));
            queued.ExecuteNonQuery();

            var dead = context.Command($"UPDATE messages SET state = {StateDead} WHERE state = {StateRedriving} AND id IN (SELECT value FROM {_database.JsonStrings("@ids")});");
            dead.Add("@ids", System.Text.Json.JsonSerializer.Serialize(refused));
            dead.ExecuteNonQuery();
            return sent.Count;
        }, cancellationToken);

    public Task<DeadLetterList> ListDeadLettersAsync(string groupId, string? after, int limit, CancellationToken cancellationToken)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();

        // Paged by (dead time, message id) so the cursor stays stable while new dead letters arrive.
        command.CommandText = """
            SELECT id, attempts, last_error, created_at, completed_at, content_type, size_bytes FROM messages
            WHERE group_id = @group AND state = 3
              AND (@after IS NULL OR completed_at > @afterAt OR (completed_at = @afterAt AND id > @after))
            ORDER BY completed_at, id LIMIT @limit;
            """;
        command.Add("@group", groupId);
        command.AddText("@after", after);
        command.Add("@afterAt", after is null ? null : DeadAtOf(connection, after), System.Data.DbType.Int64);
        command.Add("@limit", limit + 1);
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

        var histories = ReadAttempts(connection, [.. letters.Select(l => l.MessageId)]);
        letters = letters.ConvertAll(l => l with { AttemptHistory = histories.GetValueOrDefault(l.MessageId) ?? [] });
        return Task.FromResult(new DeadLetterList(letters, more ? letters[^1].MessageId : null));
    }

    /// <summary>Where the page after <paramref name="messageId"/> starts: its dead time, or the end when it is no longer a dead letter (redriven, purged).</summary>
    private static long DeadAtOf(DbConnection connection, string messageId)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT completed_at FROM messages WHERE id = @id AND state = 3;";
        command.Add("@id", messageId);
        return command.ExecuteScalar() is long deadAt ? deadAt : long.MaxValue;
    }

    public Task<MessageStatus?> GetStatusAsync(string messageId, CancellationToken cancellationToken)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, group_id, state, attempts, last_error, created_at, visible_at, completed_at, lease_token,
                   result_status, result_content_type, result_body, step, cursor, steps
            FROM messages WHERE id = @id;
            """;
        command.Add("@id", messageId);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return Task.FromResult<MessageStatus?>(null);
        }

        var state = reader.GetInt32(2);
        var visibleAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6));
        var leased = !reader.IsDBNull(8) && visibleAt > _time.GetUtcNow();
        var name = state switch
        {
            StateDelivered => "delivered",
            StateDead => "dead",
            _ when leased => "processing",
            _ => "queued",
        };
        var status = new MessageStatus(
            reader.GetString(0),
            reader.GetString(1),
            name,
            reader.GetInt32(3),
            reader.IsDBNull(4) ? null : reader.GetString(4),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
            state == StateQueued ? visibleAt : null,
            reader.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
            reader.IsDBNull(9) ? null : ReadResult(reader.GetInt32(9), reader.IsDBNull(10) ? null : reader.GetString(10), reader.IsDBNull(11) ? null : reader.GetFieldValue<byte[]>(11)),
            reader.GetInt32(12),
            reader.IsDBNull(13) ? null : reader.GetString(13),
            reader.IsDBNull(14) ? null : MessageSteps.Read(reader.GetString(14)));

        // PostgreSQL runs one command at a time per connection: the history is read once the row's reader is done.
        reader.Dispose();
        return Task.FromResult<MessageStatus?>(status with { AttemptHistory = ReadAttempts(connection, [messageId]).GetValueOrDefault(messageId) });
    }

    private static MessageResult ReadResult(int status, string? contentType, byte[]? body)
    {
        if (body is null)
        {
            return new MessageResult(status, contentType, null, null);
        }

        try
        {
            return new MessageResult(status, contentType, StrictUtf8.GetString(body), null);
        }
        catch (System.Text.DecoderFallbackException)
        {
            return new MessageResult(status, contentType, null, Convert.ToBase64String(body));
        }
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public Task<QueueCounts?> GetCountsAsync(string groupId, CancellationToken cancellationToken)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT (SELECT count(*) FROM messages WHERE group_id = @group AND state = 0),
                   (SELECT count(*) FROM messages WHERE group_id = @group AND state = 3),
                   CAST(coalesce(sum(c.ingested), 0) AS bigint), CAST(coalesce(sum(c.delivered), 0) AS bigint),
                   CAST(coalesce(sum(c.failed), 0) AS bigint), CAST(coalesce(sum(c.dead), 0) AS bigint),
                   CAST(coalesce(sum(c.throttled), 0) AS bigint)
            FROM groups g LEFT JOIN group_counters c ON c.group_id = g.id
            WHERE g.id = @group
            GROUP BY g.id;
            """;
        command.Add("@group", groupId);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return Task.FromResult<QueueCounts?>(null);
        }

        return Task.FromResult<QueueCounts?>(new QueueCounts(
            reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6)));
    }

    /// <summary>
    /// Each group's pending messages and its oldest ready one. A message is ready once its visible_at has passed (a lease
    /// moves visible_at ahead, so messages in flight are not), and the smallest visible_at of a group is that of its
    /// longest-waiting ready message whenever it lies in the past: one pass over the pending index gives both.
    /// </summary>
    public Task<IReadOnlyDictionary<string, QueueDepth>> GetDepthsAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_id, count(*), min(visible_at) FROM messages WHERE state = 0 GROUP BY group_id;";
        var depths = new Dictionary<string, QueueDepth>(StringComparer.Ordinal);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var oldest = reader.GetInt64(2);
            depths[reader.GetString(0)] = new QueueDepth(reader.GetInt64(1), oldest <= now ? DateTimeOffset.FromUnixTimeMilliseconds(oldest) : null);
        }

        return Task.FromResult<IReadOnlyDictionary<string, QueueDepth>>(depths);
    }

    public Task<IReadOnlyList<string>> GroupsWithPendingAsync(CancellationToken cancellationToken)
    {
        using var connection = _database.OpenRead();
        using var command = connection.CreateCommand();

        // A loose index scan: one index seek per group instead of reading every pending message.
        command.CommandText = "SELECT group_id FROM messages WHERE state = 0 AND group_id > @after ORDER BY group_id LIMIT 1;";
        var after = command.Add("@after", string.Empty);
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
    /// Deletes the group's queued messages, a chunk per transaction: those not leased right now, or with
    /// <paramref name="leasedToo"/> every queued record (the SQS queue, whose records cannot tell). Bodies kept in
    /// <paramref name="payloads"/> (the SQS queue's; null for a queue that keeps none) go too. Returns how many went.
    /// </summary>
    public Task<int> PurgeQueuedAsync(string groupId, bool leasedToo, IPayloadStore? payloads, CancellationToken cancellationToken) =>
        DrainAsync(() => PurgeQueuedChunkAsync(groupId, leasedToo, cancellationToken), payloads);

    /// <summary>Deletes the selected dead letters (of one group, or of all with a null group); as <see cref="PurgeQueuedAsync"/>.</summary>
    public Task<int> PurgeDeadAsync(string? groupId, DeadLetterSelection selection, IPayloadStore? payloads, CancellationToken cancellationToken) =>
        DrainAsync(() => PurgeDeadChunkAsync(groupId, selection, cancellationToken), payloads);

    private static async Task<int> DrainAsync(Func<Task<(int Deleted, List<(string GroupId, string Id)> Offloaded)>> chunkAsync, IPayloadStore? payloads)
    {
        var total = 0;
        while (await chunkAsync() is { Deleted: > 0 } chunk)
        {
            total += chunk.Deleted;
            if (payloads is not null)
            {
                foreach (var (group, id) in chunk.Offloaded)
                {
                    await payloads.DeleteAsync(group, id, CancellationToken.None);
                }
            }
        }

        return total;
    }

    /// <summary>One chunk of <see cref="PurgeQueuedAsync"/>, with the deleted messages whose body is in the payload store; an empty chunk means done.</summary>
    private Task<(int Deleted, List<(string GroupId, string Id)> Offloaded)> PurgeQueuedChunkAsync(string groupId, bool leasedToo, CancellationToken cancellationToken) =>
        DeleteChunkAsync(
            StateQueued,
            $"group_id = @group {(leasedToo ? "" : "AND (lease_token IS NULL OR visible_at <= @now)")}",
            command =>
            {
                command.Add("@group", groupId);
                command.Add("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            },
            cancellationToken);

    /// <summary>One chunk of <see cref="PurgeDeadAsync"/>, as <see cref="PurgeQueuedChunkAsync"/>.</summary>
    private Task<(int Deleted, List<(string GroupId, string Id)> Offloaded)> PurgeDeadChunkAsync(string? groupId, DeadLetterSelection selection, CancellationToken cancellationToken) =>
        DeleteChunkAsync(
            StateDead,
            (groupId is null ? "1 = 1" : "group_id = @group") + selection.Condition(_database),
            command =>
            {
                if (groupId is not null)
                {
                    command.Add("@group", groupId);
                }

                selection.Bind(command);
            },
            cancellationToken);

    private Task<(int Deleted, List<(string GroupId, string Id)> Offloaded)> DeleteChunkAsync(int state, string where, Action<DbCommand> bind, CancellationToken cancellationToken) =>
        _database.WriteAsync(context =>
        {
            var select = context.Command($"SELECT id, payload_offloaded, group_id FROM messages WHERE state = {state} AND {where} LIMIT @chunk;");
            bind(select);
            select.Add("@chunk", PurgeChunk);
            var ids = new List<string>();
            var offloaded = new List<(string GroupId, string Id)>();
            using (var reader = select.ExecuteReader())
            {
                while (reader.Read())
                {
                    ids.Add(reader.GetString(0));
                    if (reader.GetInt32(1) != 0)
                    {
                        offloaded.Add((reader.GetString(2), reader.GetString(0)));
                    }
                }
            }

            if (ids.Count == 0)
            {
                return (0, offloaded);
            }

            // Still in that state (and, when queued, not leased) since the select: both ran in this transaction.
            var delete = context.Command($"DELETE FROM messages WHERE id IN (SELECT value FROM {_database.JsonStrings("@ids")}) AND state = {state} RETURNING id;");
            delete.Add("@ids", System.Text.Json.JsonSerializer.Serialize(ids));
            var deleted = ReadIds(delete);
            ForgetAttempts(context, _database, deleted);
            return (deleted.Count, offloaded);
        }, cancellationToken);

    private static List<string> ReadIds(DbCommand command)
    {
        var ids = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    /// <summary>
    /// Deletes expired dedup keys, delivered statuses older than <paramref name="deliveredBefore"/>, and reservations
    /// never confirmed since <paramref name="acceptingBefore"/> (the SQS queue's ingress died between its two writes;
    /// the sender was never acknowledged and will retry), a chunk of each at a time;
    /// and gives redrives left unfinished since then back to the dead letters.
    /// </summary>
    public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, DateTimeOffset acceptingBefore, CancellationToken cancellationToken) =>
        _database.WriteAsync(context =>
        {
            var dedup = context.Command("DELETE FROM dedup WHERE (group_id, key) IN (SELECT group_id, key FROM dedup WHERE expires_at <= @now LIMIT @chunk);");
            dedup.Add("@now", _time.GetUtcNow().ToUnixTimeMilliseconds());
            dedup.Add("@chunk", PurgeChunk);
            var removed = dedup.ExecuteNonQuery();

            var delivered = context.Command("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE state = 2 AND completed_at < @before LIMIT @chunk) RETURNING id;");
            delivered.Add("@before", deliveredBefore.ToUnixTimeMilliseconds());
            delivered.Add("@chunk", PurgeChunk);
            var expired = ReadIds(delivered);
            ForgetAttempts(context, _database, expired);
            removed += expired.Count;

            var stale = context.Command("SELECT id, group_id FROM messages WHERE state = 1 AND created_at < @before LIMIT @chunk;");
            stale.Add("@before", acceptingBefore.ToUnixTimeMilliseconds());
            stale.Add("@chunk", PurgeChunk);
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
            var unfinished = context.Command($"UPDATE messages SET state = {StateDead} WHERE state = {StateRedriving} AND visible_at < @before;");
            unfinished.Add("@before", acceptingBefore.ToUnixTimeMilliseconds());
            removed += unfinished.ExecuteNonQuery();

            return removed;
        }, cancellationToken);
}

/// <summary>
/// Where a message SQS holds stands in its record: its step and cursor, whether that step's copy was sent, whether it is
/// still queued, and its throttled attempts in a row on that step.
/// </summary>
public readonly record struct RecordedStep(int Step, string? Cursor, bool Sent, bool Queued, int Throttles);

/// <summary>A dead letter's body as the store keeps it, or a note that the payload store has it.</summary>
public sealed record DeadBody(string Id, string? ContentType, byte[] Body, DateTimeOffset CreatedAt, bool Offloaded)
{
    /// <summary>A continued message resumes at the step it died on, with its cursor: its record says so, and a copy behind its record is never called.</summary>
    public int Step { get; init; } = 1;

    public string? Cursor { get; init; }

    public bool WantsResult { get; init; }

    /// <summary>The W3C trace context the message was ingested in, carried to SQS with it when redriven.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>
/// The multi-row insert, one SQL text per chunk size. Sizes are powers of two up to 64, so a batch of any size is a
/// few chunks, and few distinct statements stay prepared (SQLite's per-text cache, Npgsql's automatic preparation).
/// </summary>
internal static class InsertRowsSql
{
    private const int MaxRows = 64;
    private static readonly string[] BySize = Enumerable.Range(0, 7).Select(power => Build(1 << power)).ToArray();

    /// <summary>The largest chunk, a power of two, that fits in <paramref name="remaining"/> rows.</summary>
    public static int ChunkSize(int remaining) => remaining >= MaxRows ? MaxRows : 1 << (31 - int.LeadingZeroCount(remaining));

    public static string For(int rows) => BySize[int.Log2(rows)];

    // A group that no longer exists gets no row; RETURNING names the rows that went in.
    private static string Build(int rows) => $"""
        WITH v (id, group_id, state, content_type, body, size_bytes, trace_parent) AS (VALUES
        {string.Join(",\n", Enumerable.Range(0, rows).Select(r => $"(@i{r}, @g{r}, @s{r}, @t{r}, @b{r}, @z{r}, @p{r})"))})
        INSERT INTO messages (id, group_id, state, visible_at, content_type, body, size_bytes, created_at, trace_parent)
        SELECT id, group_id, state, @now, content_type, body, size_bytes, @now, trace_parent FROM v
        WHERE EXISTS (SELECT 1 FROM groups g WHERE g.id = v.group_id)
        RETURNING id;
        """;
}
