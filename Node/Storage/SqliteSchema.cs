using Microsoft.Data.Sqlite;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The embedded schema, applied in order at start. Each step runs once; the applied version is kept in user_version.
/// Times are unix milliseconds.
/// </summary>
internal static class SqliteSchema
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE groups (
            id          TEXT PRIMARY KEY,
            definition  TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE group_counters (
            group_id    TEXT PRIMARY KEY,
            ingested    INTEGER NOT NULL DEFAULT 0,
            delivered   INTEGER NOT NULL DEFAULT 0,
            failed      INTEGER NOT NULL DEFAULT 0,
            dead        INTEGER NOT NULL DEFAULT 0,
            throttled   INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;

        -- state: 0 pending (queued, or leased while lease_token is set and visible_at is ahead), 2 delivered, 3 dead.
        -- A lease moves visible_at to the lease expiry, so an expired lease makes the message visible again by itself.
        CREATE TABLE messages (
            seq           INTEGER PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            group_id      TEXT NOT NULL,
            state         INTEGER NOT NULL,
            visible_at    INTEGER NOT NULL,
            lease_token   INTEGER,
            attempts      INTEGER NOT NULL DEFAULT 0,
            last_error    TEXT,
            content_type  TEXT,
            body          BLOB,
            size_bytes    INTEGER NOT NULL,
            created_at    INTEGER NOT NULL,
            completed_at  INTEGER
        );

        -- One index range per group: a backlog in one group is never scanned while leasing another.
        CREATE INDEX messages_pending ON messages (group_id, visible_at) WHERE state = 0;
        CREATE INDEX messages_dead ON messages (group_id, completed_at) WHERE state = 3;
        CREATE INDEX messages_delivered ON messages (completed_at) WHERE state = 2;

        CREATE TABLE dedup (
            group_id    TEXT NOT NULL,
            key         TEXT NOT NULL,
            message_id  TEXT NOT NULL,
            expires_at  INTEGER NOT NULL,
            PRIMARY KEY (group_id, key)
        ) WITHOUT ROWID;

        CREATE INDEX dedup_expiry ON dedup (expires_at);
        """,
        """
        -- The SQS queue mode. SQS holds the queued messages; this store keeps a record of each (state 1 accepting:
        -- reserved before SQS accepted it, 0 queued, 2 delivered, 3 dead with its body), so dedup, status and dead
        -- letters behave as in the store queue mode.
        ALTER TABLE messages ADD COLUMN payload_offloaded INTEGER NOT NULL DEFAULT 0;

        -- Which SQS queue serves which group; unique so two group ids can never share a (hashed) queue name.
        CREATE TABLE sqs_queues (
            group_id    TEXT PRIMARY KEY,
            queue_name  TEXT NOT NULL UNIQUE,
            queue_url   TEXT NOT NULL
        ) WITHOUT ROWID;

        -- Bodies too large for an SQS message, when the payload store is this database.
        CREATE TABLE payloads (
            group_id    TEXT NOT NULL,
            message_id  TEXT NOT NULL,
            body        BLOB NOT NULL,
            PRIMARY KEY (group_id, message_id)
        ) WITHOUT ROWID;
        """,
        """
        -- Every definition change, in commit order: what other nodes of a cluster read to follow changes. One node
        -- reads nothing here, but the store writes the same rows whatever the database.
        CREATE TABLE group_changes (
            seq         INTEGER PRIMARY KEY,
            group_id    TEXT NOT NULL,
            changed_at  INTEGER NOT NULL
        );
        """,
        """
        -- Counters in slot rows, summed when read, as on PostgreSQL (where several writers use one slot each); the one
        -- SQLite writer always uses slot 0.
        CREATE TABLE group_counters_slotted (
            group_id    TEXT NOT NULL,
            slot        INTEGER NOT NULL DEFAULT 0,
            ingested    INTEGER NOT NULL DEFAULT 0,
            delivered   INTEGER NOT NULL DEFAULT 0,
            failed      INTEGER NOT NULL DEFAULT 0,
            dead        INTEGER NOT NULL DEFAULT 0,
            throttled   INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (group_id, slot)
        ) WITHOUT ROWID;
        INSERT INTO group_counters_slotted (group_id, slot, ingested, delivered, failed, dead, throttled)
            SELECT group_id, 0, ingested, delivered, failed, dead, throttled FROM group_counters;
        DROP TABLE group_counters;
        ALTER TABLE group_counters_slotted RENAME TO group_counters;
        """,
        """
        -- An operator's pause (POST /v1/groups/{id}/pause): while set, the group's messages are taken in but not
        -- processed. Apart from the definition, so a PUT or PATCH of the definition never resumes a group by accident.
        ALTER TABLE groups ADD COLUMN paused_at INTEGER;
        """,
        """
        -- Synchronous mode (POST /hooks/{id}?wait=): a message whose sender waits wants its result kept, and the call
        -- that delivered it leaves the downstream's status, content type and body here.
        ALTER TABLE messages ADD COLUMN wants_result INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN result_status INTEGER;
        ALTER TABLE messages ADD COLUMN result_content_type TEXT;
        ALTER TABLE messages ADD COLUMN result_body BLOB;
        """,
        """
        -- Continuations: the step a message is on (1-based), the cursor its last step returned, and the finished steps
        -- as a JSON array ({step, cursor, status, finishedAt}), bounded by the group's maxSteps.
        ALTER TABLE messages ADD COLUMN step INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE messages ADD COLUMN cursor TEXT;
        ALTER TABLE messages ADD COLUMN steps TEXT;
        """,
        """
        -- Every attempt that did not deliver (failed, throttled, dead), kept with its message for the dead-letter list
        -- and the status; the 100 newest per message. Deleted in the same transaction as their message.
        CREATE TABLE message_attempts (
            seq          INTEGER PRIMARY KEY,
            message_id   TEXT NOT NULL,
            attempt      INTEGER NOT NULL,
            started_at   INTEGER NOT NULL,
            duration_ms  INTEGER NOT NULL,
            status       INTEGER,
            error        TEXT NOT NULL,
            outcome      TEXT NOT NULL
        );
        CREATE INDEX message_attempts_message ON message_attempts (message_id, seq);
        """,
        """
        -- The retention sweep takes dead letters of every group by age: without this it would read all of them each time.
        CREATE INDEX messages_dead_age ON messages (completed_at) WHERE state = 3;
        """,
        """
        -- SQS continuations: whether the copy that carries the record's current step has been sent. A copy found behind
        -- its record re-sends the step only while this is 0, so a copy the continuation did send is never doubled.
        ALTER TABLE messages ADD COLUMN step_sent INTEGER NOT NULL DEFAULT 0;
        -- The step of a long job each recorded attempt was for: a dead chain's history says which step kept failing.
        ALTER TABLE message_attempts ADD COLUMN step INTEGER NOT NULL DEFAULT 1;
        """,
        """
        -- Throttled attempts (429/503 with Retry-After) in a row on the message's current step: they do not count as
        -- attempts until there are more than Processing:MaxConsecutiveThrottles of them. Any other outcome, a new step
        -- and a redrive set it back to 0.
        ALTER TABLE messages ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
        """,
        """
        -- The W3C trace context (traceparent) the message was ingested in: its deliveries continue that trace, and the
        -- target receives it. Null when the sender sent none and traces are off.
        ALTER TABLE messages ADD COLUMN trace_parent TEXT;
        """,
        """
        -- What a group's actor leaves for its next one (Node/Processing/GroupStateStore.cs): Akka.Persistence.Sql's
        -- snapshot table, in its default column names, one row per group (sequence_number is always 0). Made here, not
        -- by the plugin, so that it is part of the store's own versioned schema.
        CREATE TABLE group_snapshots (
            persistence_id   TEXT NOT NULL,
            sequence_number  INTEGER NOT NULL,
            created          INTEGER NOT NULL,
            snapshot         BLOB NOT NULL,
            manifest         TEXT NOT NULL,
            serializer_id    INTEGER,
            PRIMARY KEY (persistence_id, sequence_number)
        );
        """,
    ];

    public static void Apply(SqliteConnection connection)
    {
        using var read = connection.CreateCommand();
        read.CommandText = "PRAGMA user_version;";
        var version = Convert.ToInt32(read.ExecuteScalar());
        for (var i = version; i < Migrations.Length; i++)
        {
            using var transaction = connection.BeginTransaction();
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Migrations[i] + $"\nPRAGMA user_version = {i + 1};";
            command.ExecuteNonQuery();
            transaction.Commit();
        }
    }
}
