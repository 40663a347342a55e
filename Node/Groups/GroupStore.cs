using System.Text.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Storage;
using System.Data.Common;

namespace ClusterQueue.Node.Groups;

/// <summary>
/// Group definitions in the store. Deleting a group deletes its queue, dead letters and dedup keys in the same
/// transaction. Every change also appends to <c>group_changes</c>, which other nodes of a cluster follow.
/// </summary>
public sealed class GroupStore(SqlDatabase database, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Whether other nodes share this store (and may change groups behind this node's back).</summary>
    public bool HasPeers => database.GroupsChangedNotification is not null;

    /// <summary>Writes the group; true when it did not exist before.</summary>
    public Task<bool> UpsertAsync(GroupSettings settings, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            OrderChanges(context);
            var exists = context.Command("SELECT 1 FROM groups WHERE id = @id;");
            exists.Add("@id", settings.Id);
            var created = exists.ExecuteScalar() is null;

            var upsert = context.Command("""
                INSERT INTO groups (id, definition, created_at, updated_at) VALUES (@id, @definition, @created, @updated)
                ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at;
                """);
            upsert.Add("@id", settings.Id);
            upsert.Add("@definition", JsonSerializer.Serialize(settings.ToDefinition(), Json));
            upsert.Add("@created", settings.CreatedAt.ToUnixTimeMilliseconds());
            upsert.Add("@updated", settings.UpdatedAt.ToUnixTimeMilliseconds());
            upsert.ExecuteNonQuery();

            RecordChange(context, settings.Id, settings.UpdatedAt);
            return created;
        }, cancellationToken);

    /// <summary>
    /// Pauses the group (<paramref name="pausedAt"/> set) or resumes it (null) as a change other nodes follow; its
    /// updated_at moves too, which is how a node tells a change it has not applied. False when the group does not exist.
    /// </summary>
    public Task<bool> SetPausedAsync(string id, DateTimeOffset? pausedAt, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            OrderChanges(context);
            var pause = context.Command("UPDATE groups SET paused_at = @paused, updated_at = @now WHERE id = @id;");
            pause.Add("@id", id);
            pause.Add("@now", now.ToUnixTimeMilliseconds());
            pause.Add("@paused", pausedAt?.ToUnixTimeMilliseconds(), System.Data.DbType.Int64);

            if (pause.ExecuteNonQuery() == 0)
            {
                return false;
            }

            RecordChange(context, id, now);
            return true;
        }, cancellationToken);

    /// <summary>Removes the group with its messages, dead letters, attempt histories, dedup keys, counters and saved actor state; false when it did not exist.</summary>
    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            OrderChanges(context);
            var removed = 0;
            foreach (var sql in new[]
                     {
                         "DELETE FROM message_attempts WHERE message_id IN (SELECT id FROM messages WHERE group_id = @id);",
                         "DELETE FROM messages WHERE group_id = @id;",
                         "DELETE FROM dedup WHERE group_id = @id;",
                         "DELETE FROM group_counters WHERE group_id = @id;",
                         $"DELETE FROM {Processing.GroupStateStore.Table} WHERE persistence_id = {Processing.GroupStateStore.PersistenceIdSql("@id")};",
                         "DELETE FROM groups WHERE id = @id;",
                     })
            {
                var command = context.Command(sql);
                command.Add("@id", id);
                removed = command.ExecuteNonQuery();
            }

            RecordChange(context, id, time.GetUtcNow());
            return removed > 0;
        }, cancellationToken);

    public IReadOnlyList<GroupSettings> LoadAll()
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, definition, created_at, updated_at, paused_at FROM groups ORDER BY id;";
        return ReadAll(command);
    }

    public GroupSettings? Load(string id)
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, definition, created_at, updated_at, paused_at FROM groups WHERE id = @id;";
        command.Add("@id", id);
        return ReadAll(command).SingleOrDefault();
    }

    /// <summary>The newest change's number: a node that loads every group after reading it misses no later change.</summary>
    public long LatestChange()
    {
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT coalesce(max(seq), 0) FROM group_changes;";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The groups changed after change <paramref name="after"/>, and the newest change's number.</summary>
    public async Task<(IReadOnlyList<string> GroupIds, long Latest)> ChangesAfterAsync(long after, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenReadAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, group_id FROM group_changes WHERE seq > @after ORDER BY seq LIMIT 10000;";
        command.Add("@after", after);
        var groups = new List<string>();
        var latest = after;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            latest = reader.GetInt64(0);
            groups.Add(reader.GetString(1));
        }

        return (groups.Distinct(StringComparer.Ordinal).ToList(), latest);
    }

    /// <summary>Deletes change records older than <paramref name="before"/>: a node that was away longer reloads every group anyway.</summary>
    public Task<int> PurgeChangesAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var purge = context.Command("DELETE FROM group_changes WHERE changed_at < @before;");
            purge.Add("@before", before.ToUnixTimeMilliseconds());
            return purge.ExecuteNonQuery();
        }, cancellationToken);

    /// <summary>
    /// Taken first by every write that records a change, so change records commit in the order of their numbers: other
    /// nodes read the log after the last number they saw, and a lower number committing after a higher one was read
    /// would be skipped for good. (PostgreSQL numbers rows at insert; several writers and nodes commit in any order.)
    /// </summary>
    private void OrderChanges(SqlWriteContext context)
    {
        if (database.ChangeOrderLock is { } serialize)
        {
            context.Execute(serialize);
        }
    }

    private void RecordChange(SqlWriteContext context, string id, DateTimeOffset at)
    {
        var change = context.Command("INSERT INTO group_changes (group_id, changed_at) VALUES (@id, @at);");
        change.Add("@id", id);
        change.Add("@at", at.ToUnixTimeMilliseconds());
        change.ExecuteNonQuery();
        if (database.GroupsChangedNotification is { } notify)
        {
            context.Execute(notify);
        }
    }

    private static List<GroupSettings> ReadAll(DbCommand command)
    {
        var groups = new List<GroupSettings>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var definition = JsonSerializer.Deserialize<GroupDefinition>(reader.GetString(1), Json)
                ?? throw new InvalidDataException($"Group {reader.GetString(0)} has an empty stored definition.");
            groups.Add(GroupSettings.FromValidDefinition(
                reader.GetString(0),
                definition,
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))) with
            {
                PausedAt = reader.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
            });
        }

        return groups;
    }
}
