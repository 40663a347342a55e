using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;
using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Processing;

/// <summary>
/// What a group's actor leaves for the group's next actor, on this node or another: its bucket's tokens as they were
/// at <see cref="At"/>, its AIMD rate and when that last changed, and the epoch of the shard lease it ran under (null
/// on a node that is not clustered). Saved when an actor stops by its own decision (passivation, handoff, drain) and
/// only when it differs from what a new actor would have anyway (a full bucket at the configured rate).
/// </summary>
public sealed record SavedGroupState(double Tokens, DateTimeOffset At, double? EffectiveRate, DateTimeOffset? RateChangedAt, long? Epoch)
{
    /// <summary>What the bucket holds at <paramref name="now"/>: refilled at <paramref name="ratePerSecond"/> since then (never less), capped at the burst.</summary>
    public double TokensAt(double ratePerSecond, int burst, DateTimeOffset now) => new TokenBucket(ratePerSecond, burst, At, Tokens).Available(now);
}

/// <summary>
/// The group actors' saved state, kept as Akka.Persistence snapshots by Akka.Persistence.Sql in the node's own store
/// (the SQLite file or the PostgreSQL database), table <c>group_snapshots</c>, one row per group. Only snapshots: a
/// group's state is written when its actor stops (at most once per actor, never per message) and read when the next
/// one starts, so there is no journal to replay. Actors talk to the snapshot store directly with its protocol
/// (<see cref="LoadSnapshot"/>, <see cref="SaveSnapshot"/>, <see cref="DeleteSnapshots"/>); the payload goes through
/// <see cref="Cluster.ClusterMessageSerializer"/>, never Akka's Newtonsoft default.
/// </summary>
public static class GroupStateStore
{
    /// <summary>The table, made by the store's own migrations (SqliteSchema, PostgresSchema).</summary>
    public const string Table = "group_snapshots";

    /// <summary>The longest an actor waits for a load, a save or a delete before it goes on without it.</summary>
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(5);

    /// <summary>What an actor logs when the store has not answered within <see cref="OperationTimeout"/>.</summary>
    public static TimeoutException NoAnswer() => new($"No answer from the snapshot store in {OperationTimeout}.");

    private const string Prefix = "group/";

    // Every snapshot of a group has this sequence number, so a save replaces the group's one row.
    private const long SequenceNr = 0;

    private static readonly SnapshotSelectionCriteria Any = new(long.MaxValue, DateTime.MaxValue);

    /// <summary>The persistence id of a group's state; the group store deletes it with the group.</summary>
    public static string PersistenceIdOf(string groupId) => Prefix + groupId;

    /// <summary>SQL (SQLite and PostgreSQL) for the persistence id of the group whose id is the parameter <paramref name="parameter"/>.</summary>
    public static string PersistenceIdSql(string parameter) => $"'{Prefix}' || {parameter}";

    /// <summary>Adds Akka.Persistence.Sql's snapshot store, on the node's store, as the actor system's default one.</summary>
    public static AkkaConfigurationBuilder WithGroupStates(this AkkaConfigurationBuilder builder, SqlDatabase database) =>
        builder.WithSqlPersistence(journalOptions: null, snapshotOptions: SnapshotOptions(database.PersistenceConnection));

    /// <summary>The snapshot store's settings for a store reached by <paramref name="connection"/>.</summary>
    public static SqlSnapshotOptions SnapshotOptions((string ConnectionString, string Provider) connection) =>
        PersistenceTables.Snapshots(connection, Table);

    /// <summary>The actor system's snapshot store, which answers the requests below to their sender.</summary>
    public static IActorRef SnapshotStore(ActorSystem system) => Persistence.Instance.Apply(system).SnapshotStoreFor(null);

    /// <summary>Answered with <see cref="LoadSnapshotResult"/> or <see cref="LoadSnapshotFailed"/>.</summary>
    public static LoadSnapshot Load(string groupId) => new(PersistenceIdOf(groupId), SnapshotSelectionCriteria.Latest, long.MaxValue);

    /// <summary>Answered with <see cref="SaveSnapshotSuccess"/> or <see cref="SaveSnapshotFailure"/>.</summary>
    public static SaveSnapshot Save(string groupId, SavedGroupState state) =>
        new(new SnapshotMetadata(PersistenceIdOf(groupId), SequenceNr, state.At.UtcDateTime), state);

    /// <summary>Answered with <see cref="DeleteSnapshotsSuccess"/> or <see cref="DeleteSnapshotsFailure"/>.</summary>
    public static DeleteSnapshots Delete(string groupId) => new(PersistenceIdOf(groupId), Any);

    /// <summary>
    /// Saves, reads and deletes a throwaway state under a persistence id apart from every group's (<c>warm-up</c>), once,
    /// as a clustered node starts. The snapshot store's first save in a process took 0.65–1.0 s and its first
    /// delete 0.13–0.22 s, the next ones a few milliseconds: without this, the first actors to stop paid it, and those
    /// are the ones of a handoff, whose groups wait for it. A failure changes nothing but that.
    /// </summary>
    public static async Task WarmUpAsync(IActorRef store)
    {
        const string persistenceId = "warm-up";
        var state = new SavedGroupState(0, DateTimeOffset.UtcNow, null, null, null);
        try
        {
            await store.Ask<object>(new SaveSnapshot(new SnapshotMetadata(persistenceId, SequenceNr, state.At.UtcDateTime), state), OperationTimeout);
            await store.Ask<object>(new LoadSnapshot(persistenceId, SnapshotSelectionCriteria.Latest, long.MaxValue), OperationTimeout);
            await store.Ask<object>(new DeleteSnapshots(persistenceId, Any), OperationTimeout);
        }
        catch (AskTimeoutException)
        {
            // The store is slow or away; the actors' own requests have their own deadlines.
        }
    }
}
