using ClusterQueue.Node.Storage;

namespace ClusterQueue.Node.Queueing.Payloads;

/// <summary>
/// Payloads in this node's own database (the <c>payloads</c> table): nothing else to run or configure. Writes go
/// through the single writer, so a put is committed (and fsynced) with its batch before it returns.
/// </summary>
public sealed class SqlPayloadStore(SqlDatabase database) : IPayloadStore
{
    public Task PutAsync(string groupId, string messageId, byte[] body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        return database.WriteAsync(context =>
        {
            var upsert = context.Command("""
                INSERT INTO payloads (group_id, message_id, body) VALUES (@group, @id, @body)
                ON CONFLICT (group_id, message_id) DO UPDATE SET body = excluded.body;
                """);
            upsert.Add("@group", groupId);
            upsert.Add("@id", messageId);
            upsert.Add("@body", body);
            return upsert.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task<byte[]?> GetAsync(string groupId, string messageId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var connection = database.OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT body FROM payloads WHERE group_id = @group AND message_id = @id;";
        command.Add("@group", groupId);
        command.Add("@id", messageId);
        using var reader = command.ExecuteReader();
        return Task.FromResult(reader.Read() ? reader.GetFieldValue<byte[]>(0) : null);
    }

    public Task DeleteAsync(string groupId, string messageId, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            var delete = context.Command("DELETE FROM payloads WHERE group_id = @group AND message_id = @id;");
            delete.Add("@group", groupId);
            delete.Add("@id", messageId);
            return delete.ExecuteNonQuery();
        }, cancellationToken);

    public Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken) =>
        database.WriteAsync(context =>
        {
            // One statement on the primary key's leading column: a range delete, however many payloads the group had.
            var delete = context.Command("DELETE FROM payloads WHERE group_id = @group;");
            delete.Add("@group", groupId);
            return delete.ExecuteNonQuery();
        }, cancellationToken);
}
