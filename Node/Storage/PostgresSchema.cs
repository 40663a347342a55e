using Npgsql;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// The PostgreSQL schema, applied in order at start. Several nodes may start at once: a transaction-scoped advisory
/// lock lets one apply the missing steps while the others wait, then find nothing left to do. Times in the message
/// tables are unix milliseconds written by the nodes (as in SQLite); the cluster's tables use the database's own
/// clock (<c>timestamptz</c>, <c>now()</c>), because lease expiry must be judged by one clock.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>Any fixed number: the advisory lock that serialises migrations across nodes.</summary>
    private const long MigrationLock = 0x436c51_5363_6865;

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE groups (
            id          text PRIMARY KEY,
            definition  text NOT NULL,
            created_at  bigint NOT NULL,
            updated_at  bigint NOT NULL
        );

        CREATE TABLE group_counters (
            group_id    text PRIMARY KEY,
            ingested    bigint NOT NULL DEFAULT 0,
            delivered   bigint NOT NULL DEFAULT 0,
            failed      bigint NOT NULL DEFAULT 0,
            dead        bigint NOT NULL DEFAULT 0,
            throttled   bigint NOT NULL DEFAULT 0
        );

        -- state: 0 queued (leased while lease_token is set and visible_at is ahead), 1 accepting (SQS queue: reserved
        -- before SQS took it), 2 delivered, 3 dead, 4 redriving (SQS queue).
        CREATE TABLE messages (
            seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id                 text NOT NULL UNIQUE,
            group_id           text NOT NULL,
            state              integer NOT NULL,
            visible_at         bigint NOT NULL,
            lease_token        bigint,
            attempts           integer NOT NULL DEFAULT 0,
            last_error         text,
            content_type       text,
            body               bytea,
            size_bytes         bigint NOT NULL,
            created_at         bigint NOT NULL,
            completed_at       bigint,
            payload_offloaded  integer NOT NULL DEFAULT 0
        );

        CREATE INDEX messages_pending ON messages (group_id, visible_at) WHERE state = 0;
        CREATE INDEX messages_dead ON messages (group_id, completed_at) WHERE state = 3;
        CREATE INDEX messages_delivered ON messages (completed_at) WHERE state = 2;
        CREATE INDEX messages_accepting ON messages (created_at) WHERE state IN (1, 4);

        CREATE TABLE dedup (
            group_id    text NOT NULL,
            key         text NOT NULL,
            message_id  text NOT NULL,
            expires_at  bigint NOT NULL,
            PRIMARY KEY (group_id, key)
        );

        CREATE INDEX dedup_expiry ON dedup (expires_at);

        CREATE TABLE sqs_queues (
            group_id    text PRIMARY KEY,
            queue_name  text NOT NULL UNIQUE,
            queue_url   text NOT NULL
        );

        CREATE TABLE payloads (
            group_id    text NOT NULL,
            message_id  text NOT NULL,
            body        bytea NOT NULL,
            PRIMARY KEY (group_id, message_id)
        );

        -- Every definition change, in commit order: other nodes read what is new after the last seq they saw.
        CREATE TABLE group_changes (
            seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            group_id    text NOT NULL,
            changed_at  bigint NOT NULL
        );

        -- Settings every node must share (the shard count); the first node to start writes them.
        CREATE TABLE cluster_settings (
            name   text PRIMARY KEY,
            value  text NOT NULL
        );

        -- One row per node process; a node is live while expires_at is ahead of the database's clock.
        CREATE TABLE cluster_members (
            node_id       text PRIMARY KEY,
            session       uuid NOT NULL,
            started_at    timestamptz NOT NULL,
            heartbeat_at  timestamptz NOT NULL,
            expires_at    timestamptz NOT NULL,
            leaving       boolean NOT NULL DEFAULT false
        );

        -- One row per shard. owner/session hold it until expires_at; epoch grows by one with every acquisition and
        -- fences the owner's writes. A released shard has no owner.
        CREATE TABLE shard_leases (
            shard        integer PRIMARY KEY,
            owner        text,
            session      uuid,
            epoch        bigint NOT NULL DEFAULT 0,
            acquired_at  timestamptz,
            expires_at   timestamptz NOT NULL DEFAULT '-infinity'
        );

        -- A group's token bucket as its last owner left it at a handover, so the next owner does not start full.
        CREATE TABLE group_buckets (
            group_id  text PRIMARY KEY,
            shard     integer NOT NULL,
            tokens    double precision NOT NULL,
            saved_at  timestamptz NOT NULL
        );

        CREATE INDEX group_buckets_shard ON group_buckets (shard);
        """,
        """
        -- A group's counters are spread over slot rows, summed when read. Every writer connection adds to a slot of its
        -- own choosing, so writers (of this node and others) ingesting into one hot group do not queue behind one
        -- row lock that is held until each commit's flush.
        ALTER TABLE group_counters ADD COLUMN slot integer NOT NULL DEFAULT 0;
        ALTER TABLE group_counters DROP CONSTRAINT group_counters_pkey;
        ALTER TABLE group_counters ADD PRIMARY KEY (group_id, slot);
        """,
        """
        -- An operator's pause (POST /v1/groups/{id}/pause): while set, the group's messages are taken in but not
        -- processed. Apart from the definition, so a PUT or PATCH of the definition never resumes a group by accident.
        ALTER TABLE groups ADD COLUMN paused_at bigint;
        """,
        """
        -- Synchronous mode (POST /hooks/{id}?wait=): a message whose sender waits wants its result kept, and the call
        -- that delivered it leaves the downstream's status, content type and body here.
        ALTER TABLE messages ADD COLUMN wants_result integer NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN result_status integer;
        ALTER TABLE messages ADD COLUMN result_content_type text;
        ALTER TABLE messages ADD COLUMN result_body bytea;
        """,
        """
        -- Continuations: the step a message is on (1-based), the cursor its last step returned, and the finished steps
        -- as a JSON array ({step, cursor, status, finishedAt}), bounded by the group's maxSteps.
        ALTER TABLE messages ADD COLUMN step integer NOT NULL DEFAULT 1;
        ALTER TABLE messages ADD COLUMN cursor text;
        ALTER TABLE messages ADD COLUMN steps text;
        """,
        """
        -- Every attempt that did not deliver (failed, throttled, dead), kept with its message for the dead-letter list
        -- and the status; the 100 newest per message. Deleted in the same transaction as their message.
        CREATE TABLE message_attempts (
            seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id   text NOT NULL,
            attempt      integer NOT NULL,
            started_at   bigint NOT NULL,
            duration_ms  bigint NOT NULL,
            status       integer,
            error        text NOT NULL,
            outcome      text NOT NULL
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
        ALTER TABLE messages ADD COLUMN step_sent integer NOT NULL DEFAULT 0;
        -- The step of a long job each recorded attempt was for: a dead chain's history says which step kept failing.
        ALTER TABLE message_attempts ADD COLUMN step integer NOT NULL DEFAULT 1;
        """,
        """
        -- Throttled attempts (429/503 with Retry-After) in a row on the message's current step: they do not count as
        -- attempts until there are more than Processing:MaxConsecutiveThrottles of them. Any other outcome, a new step
        -- and a redrive set it back to 0.
        ALTER TABLE messages ADD COLUMN throttles integer NOT NULL DEFAULT 0;
        """,
        """
        -- The W3C trace context (traceparent) the message was ingested in: its deliveries continue that trace, and the
        -- target receives it. Null when the sender sent none and traces are off.
        ALTER TABLE messages ADD COLUMN trace_parent text;
        """,
        """
        -- Named leases for Akka.Coordination (Node/Cluster/Leases/PostgresLease.cs). owner holds the lease until
        -- expires_at, by the database's clock. epoch grows by one whenever another owner takes the lease and fences the
        -- holder's writes. A released lease keeps its row with no owner, so its epoch never starts over.
        CREATE TABLE leases (
            name         text PRIMARY KEY,
            owner        text,
            epoch        bigint NOT NULL,
            acquired_at  timestamptz NOT NULL,
            expires_at   timestamptz NOT NULL
        );
        """,
        """
        -- The cluster runs on Akka.NET: shards are placed by Akka.Cluster.Sharding and fenced by the rows of leases;
        -- the hand-built membership and shard leases are gone (a cluster is upgraded by stopping every node first).
        -- quiet_since: when a lease was taken from an owner whose row had expired, that row's expiry, so the new owner
        -- starts its groups from what accrued since rather than from full buckets.
        ALTER TABLE leases ADD COLUMN quiet_since timestamptz;
        DROP TABLE shard_leases;
        DROP TABLE cluster_members;

        -- The remoting addresses of live members: a starting node joins them (cluster_seeds), or forms the cluster when
        -- there are none. A member renews its row while it runs; a row is live while expires_at is ahead of the
        -- database's clock.
        CREATE TABLE cluster_seeds (
            address     text PRIMARY KEY,
            node_id     text NOT NULL,
            expires_at  timestamptz NOT NULL
        );
        """,
        """
        -- A member's row lapses when it leaves (it lets it lapse on purpose) or when it is cut off from the database;
        -- only the second is downed by the members that still reach the database.
        ALTER TABLE cluster_seeds ADD COLUMN leaving boolean NOT NULL DEFAULT false;
        """,
        """
        -- What a group's actor leaves for its next one is a snapshot of Akka.Persistence.Sql (Node/Processing/
        -- GroupStateStore.cs), in its default column names, one row per group (sequence_number is always 0). Made here,
        -- not by the plugin: nodes starting at once would race to create it.
        CREATE TABLE group_snapshots (
            persistence_id   varchar(255) NOT NULL,
            sequence_number  bigint NOT NULL,
            created          bigint NOT NULL,
            snapshot         bytea NOT NULL,
            manifest         varchar(500) NOT NULL,
            serializer_id    integer,
            PRIMARY KEY (persistence_id, sequence_number)
        );
        DROP TABLE group_buckets;
        -- The epoch at which the lease was last taken from an owner that had failed: state saved under an earlier epoch
        -- may be older than what that owner did before it failed.
        ALTER TABLE leases ADD COLUMN taken_over_epoch bigint NOT NULL DEFAULT 0;
        """,
        """
        -- The shard coordinator's state (which member holds which shard) as Akka.Persistence.Sql's journal and snapshots
        -- (Node/Cluster/CoordinatorState.cs), in the plugin's default column names. Made here, not by the plugin: nodes
        -- starting at once would race to create them. The unique (persistence_id, sequence_number) is what keeps two
        -- coordinators from both writing the same step.
        CREATE TABLE shard_coordinator_journal (
            ordering         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            created          bigint NOT NULL,
            deleted          boolean NOT NULL,
            persistence_id   varchar(255) NOT NULL,
            sequence_number  bigint NOT NULL,
            message          bytea NOT NULL,
            manifest         varchar(500),
            identifier       integer,
            writer_uuid      varchar(128),
            UNIQUE (persistence_id, sequence_number)
        );
        -- Events' tags; the coordinator writes none, the plugin reads this table in its tag queries.
        CREATE TABLE shard_coordinator_tags (
            ordering_id      bigint NOT NULL,
            tag              varchar(64) NOT NULL,
            sequence_nr      bigint NOT NULL,
            persistence_id   varchar(255) NOT NULL,
            PRIMARY KEY (ordering_id, tag)
        );
        CREATE TABLE shard_coordinator_snapshots (
            persistence_id   varchar(255) NOT NULL,
            sequence_number  bigint NOT NULL,
            created          bigint NOT NULL,
            snapshot         bytea NOT NULL,
            manifest         varchar(500) NOT NULL,
            serializer_id    integer,
            PRIMARY KEY (persistence_id, sequence_number)
        );
        """,
    ];

    public static void Apply(NpgsqlDataSource dataSource, ILogger logger)
    {
        using var connection = dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        Execute(connection, $"SELECT pg_advisory_xact_lock({MigrationLock});");
        Execute(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());");
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT coalesce(max(version), 0) FROM schema_migrations;";
        var version = Convert.ToInt32(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        for (var i = version; i < Migrations.Length; i++)
        {
            Execute(connection, Migrations[i]);
            Execute(connection, $"INSERT INTO schema_migrations (version) VALUES ({i + 1});");
        }

        transaction.Commit();
        if (version < Migrations.Length)
        {
            Log.Migrated(logger, version, Migrations.Length);
        }
    }

    private static void Execute(NpgsqlConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
