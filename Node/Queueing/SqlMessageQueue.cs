using System.Security.Cryptography;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// The queue as a table of the SQL store (SQLite or PostgreSQL). Every write goes through <see cref="SqlDatabase"/>'s
/// writer loops, so concurrent ingest requests, leases and acks share commits. A lease token (random per lease call)
/// fences all changes to a leased message: see <see cref="IMessageQueue"/> for the lifecycle. In a cluster a lease is
/// also fenced by the group's shard: it takes messages only while the database says this node's session holds the
/// shard's lease at the epoch it acquired, by the database's clock, so a node that lost its shard cannot start a message the
/// new owner may also start.
/// </summary>
public sealed class SqlMessageQueue(SqlDatabase database, TimeProvider time, ShardOwnership? ownership = null)
    : RecordedMessageQueue(new MessageRecords(database, time)), IMessageQueue
{
    private const string ShardFenceSql = """
        AND EXISTS (SELECT 1 FROM leases
                    WHERE name = @lease AND owner = @owner AND epoch = @epoch AND expires_at > clock_timestamp())
        """;

    private readonly ShardOwnership _ownership = ownership ?? ShardOwnership.Standalone();

    private const int StatePending = MessageRecords.StateQueued;
    private const int StateDelivered = MessageRecords.StateDelivered;
    private const int StateDead = MessageRecords.StateDead;

    public Task PrepareGroupAsync(string groupId, TimeSpan handlerTimeout, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task RemoveGroupAsync(string groupId, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<string>> RecoverAsync(IReadOnlyCollection<GroupSettings> groups, CancellationToken cancellationToken) =>
        Records.GroupsWithPendingAsync(cancellationToken);

    public Task<EnqueueResult> EnqueueAsync(NewMessage message, CancellationToken cancellationToken) =>
        Records.InsertAsync(message, MessageRecords.StateQueued, DateTimeOffset.MinValue, cancellationToken);

    public Task<int> PurgeQueueAsync(string groupId, CancellationToken cancellationToken) =>
        Records.PurgeQueuedAsync(groupId, leasedToo: false, payloads: null, cancellationToken);

    public int LeaseLimit => int.MaxValue;

    public Task<LeaseBatch> LeaseAsync(string groupId, int max, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var fence = _ownership.FenceFor(groupId);
        if (_ownership.IsClustered && fence is null)
        {
            return Task.FromResult(new LeaseBatch([], null));
        }

        return database.WriteAsync(context =>
        {
            var now = time.GetUtcNow();
            var token = RandomNumberGenerator.GetInt32(1, int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
            var lease = context.Command($"""
                UPDATE messages SET visible_at = @until, lease_token = @token, attempts = attempts + 1
                WHERE seq IN (
                    SELECT seq FROM messages
                    WHERE group_id = @group AND state = 0 AND visible_at <= @now {(fence is null ? "" : ShardFenceSql)}
                    ORDER BY visible_at, seq LIMIT @max {database.SkipLocked})
                RETURNING seq, id, attempts, content_type, body, created_at, wants_result, step, cursor, throttles, trace_parent;
                """);
            lease.Add("@until", (now + leaseDuration).ToUnixTimeMilliseconds());
            lease.Add("@token", token);
            lease.Add("@group", groupId);
            lease.Add("@now", now.ToUnixTimeMilliseconds());
            lease.Add("@max", max);
            if (fence is { } held)
            {
                lease.Add("@lease", held.LeaseName);
                lease.Add("@owner", held.Owner);
                lease.Add("@epoch", held.Epoch);
            }

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
                        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)))
                    {
                        WantsResult = reader.GetInt32(6) != 0,
                        Step = reader.GetInt32(7),
                        Cursor = reader.IsDBNull(8) ? null : reader.GetString(8),
                        Throttles = reader.GetInt32(9),
                        TraceParent = reader.IsDBNull(10) ? null : reader.GetString(10),
                    }));
                }
            }

            leased.Sort((a, b) => a.Seq.CompareTo(b.Seq));
            var next = context.Command("SELECT MIN(visible_at) FROM messages WHERE group_id = @group AND state = 0;");
            next.Add("@group", groupId);
            var nextVisible = next.ExecuteScalar() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
            return new LeaseBatch(leased.ConvertAll(l => l.Message), nextVisible);
        }, WriteAcknowledgement.WhenCommitted, cancellationToken);
    }

    public Task<bool> ExtendAsync(LeasedMessage message, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        ChangeLeased(message, "visible_at = @at", time.GetUtcNow() + leaseDuration, null, null, cancellationToken, WriteAcknowledgement.WhenCommitted);

    // Leases, extensions, acks, releases and retries are acknowledged at commit, before the disk has them: if a power
    // failure loses one, the message is only leased or delivered again, which at-least-once allows. Dead letters and
    // everything ingress promises wait for the disk.

    public Task<bool> CompleteAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        CompleteAsync(message, null, cancellationToken);

    public Task<bool> CompleteAsync(LeasedMessage message, DeliveryResult? result, CancellationToken cancellationToken) =>
        ChangeLeased(
            message,
            result is null
                ? $"state = {StateDelivered}, body = NULL, lease_token = NULL, completed_at = @at"
                : $"state = {StateDelivered}, body = NULL, lease_token = NULL, completed_at = @at, result_status = @resultStatus, result_content_type = @resultContentType, result_body = @resultBody",
            time.GetUtcNow(),
            null,
            CounterChange.Delivery,
            cancellationToken,
            // A waiting sender is told at once, so its result must be on disk first.
            message.WantsResult ? WriteAcknowledgement.WhenDurable : WriteAcknowledgement.WhenCommitted,
            result);

    public Task<bool> ContinueAsync(LeasedMessage message, string cursor, int status, CancellationToken cancellationToken)
    {
        var token = long.Parse(message.Receipt, System.Globalization.CultureInfo.InvariantCulture);
        return database.WriteAsync(
            context => MessageRecords.AdvanceStep(
                context,
                message,
                cursor,
                status,
                time.GetUtcNow(),
                $"lease_token = @token AND state = {StatePending}",
                command => command.Add("@token", token),
                "lease_token = NULL"),
            WriteAcknowledgement.WhenCommitted,
            cancellationToken);
    }

    public Task<bool> RetryAsync(LeasedMessage message, DateTimeOffset visibleAt, string error, RetryKind kind, CancellationToken cancellationToken, AttemptReport? report = null) =>
        ChangeLeased(
            message,
            // The lease counted the attempt; a throttle that does not count gives it back.
            $"visible_at = @at, lease_token = NULL, last_error = @error, {(kind == RetryKind.Throttled ? "attempts = attempts - 1, " : "")}{MessageRecords.ThrottlesAfter(kind)}",
            visibleAt,
            error,
            MessageRecords.CounterOf(kind),
            cancellationToken,
            WriteAcknowledgement.WhenCommitted,
            attempt: report is null ? null : (report, MessageRecords.OutcomeOf(kind)));

    public Task<bool> ReleaseAsync(LeasedMessage message, CancellationToken cancellationToken) =>
        ChangeLeased(message, "visible_at = @at, lease_token = NULL, attempts = attempts - 1", time.GetUtcNow(), null, null, cancellationToken, WriteAcknowledgement.WhenCommitted);

    public Task<bool> DeadLetterAsync(LeasedMessage message, string error, CancellationToken cancellationToken, AttemptReport? report = null) =>
        ChangeLeased(
            message,
            $"state = {StateDead}, lease_token = NULL, last_error = @error, completed_at = @at",
            time.GetUtcNow(),
            error,
            CounterChange.Death,
            cancellationToken,
            attempt: report is null ? null : (report, "dead"));

    private Task<bool> ChangeLeased(
        LeasedMessage message,
        string set,
        DateTimeOffset at,
        string? error,
        CounterChange? counter,
        CancellationToken cancellationToken,
        WriteAcknowledgement acknowledgement = WriteAcknowledgement.WhenDurable,
        DeliveryResult? result = null,
        (AttemptReport Report, string Outcome)? attempt = null)
    {
        var token = long.Parse(message.Receipt, System.Globalization.CultureInfo.InvariantCulture);
        return database.WriteAsync(context =>
        {
            var update = context.Command($"UPDATE messages SET {set} WHERE id = @id AND lease_token = @token AND state = {StatePending};");
            update.Add("@id", message.Id);
            update.Add("@token", token);
            update.Add("@at", at.ToUnixTimeMilliseconds());
            if (error is not null)
            {
                update.AddText("@error", error);
            }

            if (result is not null)
            {
                update.Add("@resultStatus", result.Status);
                update.AddText("@resultContentType", result.ContentType);
                update.AddBytes("@resultBody", result.Body);
            }

            var changed = update.ExecuteNonQuery() == 1;
            if (changed && counter is { } change)
            {
                context.Count(message.GroupId, change);
            }

            if (changed && attempt is { } undelivered)
            {
                MessageRecords.RecordAttemptRow(context, message, message.Attempt, undelivered.Report, error ?? "", undelivered.Outcome);
            }

            if (changed && message.WantsResult && counter is { Delivered: > 0 } or { Dead: > 0 })
            {
                MessageRecords.AnnounceOutcome(context, database, message.Id);
            }

            return changed;
        }, acknowledgement, cancellationToken);
    }

    /// <summary>
    /// In chunks of <see cref="RedriveChunk"/>, each its own transaction, so a redrive of a million does not hold the
    /// writer. The redriven messages are an ordinary backlog: the group's actor takes them under its bucket.
    /// </summary>
    public async Task<int> RedriveAsync(string groupId, DeadLetterSelection selection, CancellationToken cancellationToken)
    {
        var total = 0;
        while (true)
        {
            var redriven = await database.WriteAsync(context =>
            {
                var chunk = context.Command($"""
                    UPDATE messages SET state = {StatePending}, visible_at = @now, attempts = 0, throttles = 0, completed_at = NULL, lease_token = NULL
                    WHERE seq IN (SELECT seq FROM messages WHERE group_id = @group AND state = {StateDead} {selection.Condition(database)} LIMIT {RedriveChunk});
                    """);
                chunk.Add("@now", time.GetUtcNow().ToUnixTimeMilliseconds());
                chunk.Add("@group", groupId);
                selection.Bind(chunk);
                return chunk.ExecuteNonQuery();
            }, cancellationToken);
            total += redriven;
            if (redriven < RedriveChunk)
            {
                return total;
            }
        }
    }

    private const int RedriveChunk = 5000;

    public Task<int> PurgeDeadLettersAsync(string? groupId, DeadLetterSelection selection, CancellationToken cancellationToken) =>
        Records.PurgeDeadAsync(groupId, selection, payloads: null, cancellationToken);

    public Task<int> PurgeExpiredAsync(DateTimeOffset deliveredBefore, CancellationToken cancellationToken) =>
        Records.PurgeExpiredAsync(deliveredBefore, DateTimeOffset.MinValue, cancellationToken);
}
