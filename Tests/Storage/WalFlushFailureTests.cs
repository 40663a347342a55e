using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Microsoft.Data.Sqlite;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// A failed flush of the SQLite WAL, injected for real into the node process's fdatasync by strace. Linux reports a
/// failed write-back once, so a later flush that succeeds proves nothing about the pages that failed: the node must
/// answer 503 for what the failed flush held, and acknowledge nothing more until the database file itself (not the WAL)
/// holds every commit, synced.
/// </summary>
public sealed class WalFlushFailureTests
{
    private const string Why = "it injects a failed fdatasync into the node process";

    [CommandFact("strace", Why)]
    public async Task FailedWalFlush_Answers503_ThenNothingIsAcknowledgedUntilTheDatabaseFileHoldsEveryCommit()
    {
        var strace = CommandFactAttribute.Require("strace", Why);
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");

        // The 20th flush of the WAL fails: a start, a group and a pause take fewer, so it falls among the posts below.
        await using var node = await NodeProcess.StartAsync(
            database,
            launcher: [strace, "-f", "-qq", "-o", "/dev/null", "-P", database + "-wal", "-e", "trace=fdatasync", "-e", "inject=fdatasync:error=EIO:when=20"]);
        using (var put = await node.Client.PutAsJsonAsync("/v1/groups/held", new GroupDefinition
        {
            RatePerSecond = 1,
            Burst = 1,
            MaxConcurrency = 1,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        }))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        // Paused, so every message stays queued in the database, where the test can look for it.
        (await node.Client.PostAsync("/v1/groups/held/pause", null)).EnsureSuccessStatusCode();

        var acknowledged = new List<string>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 100 && refused is null; i++)
        {
            var response = await node.Client.PostAsync("/hooks/held", new StringContent($"message {i}"));
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                acknowledged.Add((await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId);
                response.Dispose();
            }
            else
            {
                refused = response;
            }
        }

        Assert.NotNull(refused);
        using (refused)
        {
            Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"the failed flush was answered {(int)refused.StatusCode}: {await refused.Content.ReadAsStringAsync()}\n{node.Output}");
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        Assert.NotEmpty(acknowledged);

        // The next acknowledgement comes only once the database file holds everything: a copy of that file alone,
        // without the WAL, must have every message acknowledged before the failure.
        await Eventually.ReadAsync(
            async () =>
            {
                using var response = await node.Client.PostAsync("/hooks/held", new StringContent("after the failure"));
                return response.StatusCode == HttpStatusCode.Accepted;
            },
            acknowledgedAgain => acknowledgedAgain,
            "a post acknowledged again after the failed flush",
            TimeSpan.FromSeconds(30));

        var copy = directory.File("copy.db");
        File.Copy(database, copy);
        var inFile = CountIn(copy, acknowledged);
        Assert.True(inFile == acknowledged.Count, $"the database file alone holds {inFile} of the {acknowledged.Count} messages acknowledged before the failed flush");

        await Eventually.ReadAsync(
            async () =>
            {
                using var ready = await node.Client.GetAsync("/readyz");
                return ready.StatusCode;
            },
            status => status == HttpStatusCode.OK,
            "the node ready again",
            TimeSpan.FromSeconds(30));
    }

    private static int CountIn(string databaseFile, IReadOnlyList<string> ids)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = databaseFile, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();

        // Without a checkpoint even the schema is only in the WAL: a file with no messages table holds none of them.
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'messages'";
        if (Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            return 0;
        }

        command.CommandText = "SELECT count(*) FROM messages WHERE id IN (SELECT value FROM json_each(@ids))";
        command.Parameters.AddWithValue("@ids", System.Text.Json.JsonSerializer.Serialize(ids));
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
