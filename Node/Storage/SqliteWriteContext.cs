using Microsoft.Data.Sqlite;

namespace ClusterQueue.Node.Storage;

/// <summary>
/// What a write operation sees: the writer connection with its open transaction. Commands are cached by their SQL
/// text so each statement is prepared once for the life of the node.
/// </summary>
public sealed class SqliteWriteContext(SqliteConnection connection)
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    /// <summary>A prepared command for <paramref name="sql"/> with its parameters cleared.</summary>
    public SqliteCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            _commands[sql] = command;
        }

        command.Parameters.Clear();
        return command;
    }

    public int Execute(string sql) => Command(sql).ExecuteNonQuery();
}
