using System.Net;
using System.Runtime.Versioning;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// The SQLite files hold every group's verification secret and every message body: only the node's own user may read
/// them, whatever the process's umask lets new files have.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class SqliteFileModeTests : IDisposable
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode WorldReadable = OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly TempDirectory _directory = new();

    [Fact]
    public async Task FreshNode_CreatesItsDataDirectory0700_AndTheDatabaseWalAndShm0600()
    {
        var data = Path.Combine(_directory.Path, "data");
        var path = Path.Combine(data, "clusterqueue.db");

        await using var node = NodeHost.Start(databasePath: path);
        await node.DefineGroupAsync("orders", Held);
        using var accepted = await node.IngestAsync("orders", """{"secret":"body"}""");
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);

        // Checked while the node runs: SQLite deletes the -wal and -shm files when its last connection closes.
        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(data));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path));
        Assert.True(File.Exists(path + "-wal"), "no -wal file beside the database");
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path + "-wal"));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path + "-shm"));
    }

    [Fact]
    public async Task ExistingDataDirectory_KeepsTheModeItsOwnerGaveIt()
    {
        var data = Path.Combine(_directory.Path, "shared");
        const UnixFileMode Shared = OwnerOnlyDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute;
        Directory.CreateDirectory(data, Shared);

        await using (var database = Open(Path.Combine(data, "store.db")))
        {
            Assert.Equal(Shared, File.GetUnixFileMode(data));
            Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(Path.Combine(data, "store.db")));
        }
    }

    [Fact]
    public async Task ExistingDatabaseReadableByOthers_IsMadeOwnerOnlyAtStart_WithItsWalAndShm()
    {
        var path = _directory.File("store.db");
        await using (Open(path))
        {
        }

        // As every earlier version left it: 0644 under the usual umask.
        File.SetUnixFileMode(path, WorldReadable);

        await using var reopened = Open(path);
        await reopened.WriteAsync(context => context.Execute("INSERT INTO dedup (group_id, key, message_id, expires_at) VALUES ('g', 'k', 'm', 0);"));

        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path + "-wal"));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(path + "-shm"));
    }

    private static SqliteDatabase Open(string path) => new(
        Options.Create(new StorageOptions { Sqlite = new SqliteOptions { Path = path } }),
        NullLogger<SqliteDatabase>.Instance);

    private static ClusterQueue.Contracts.GroupDefinition Held => new()
    {
        RatePerSecond = 0.001,
        Burst = 1,
        MaxConcurrency = 1,
        Target = new ClusterQueue.Contracts.TargetDefinition { Url = $"http://127.0.0.1:{LoopbackServer.FreePort()}/nobody" },
    };

    public void Dispose() => _directory.Dispose();
}
