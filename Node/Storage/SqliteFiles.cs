namespace ClusterQueue.Node.Storage;

/// <summary>
/// The embedded database's files hold every group's verification secret and every message body, so only the node's
/// own user may read them. The database file is created owner-only (0600) before SQLite opens it; SQLite's unix VFS
/// gives the -wal and -shm files it creates the mode of the database file, so they follow. A data directory the node
/// creates is 0700; one that exists is the operator's and keeps its mode.
/// An existing database readable by its group or by others (every earlier version created it 0644) is made owner-only
/// at start, with a warning: the node is its only reader (a copy for backup is taken as the node's user, or with
/// SQLite's backup API), and a warning alone would leave the secrets of every install upgraded in place exposed.
/// </summary>
internal static class SqliteFiles
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnlyFile | UnixFileMode.UserExecute;
    private const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    // The files SQLite keeps beside the database: the WAL, its index, and the rollback journal of a database not yet in WAL mode.
    private static readonly string[] Companions = ["-wal", "-shm", "-journal"];

    /// <summary>Makes the directory and the database file exist, owner-only where the node creates them, and tightens existing ones.</summary>
    public static void Prepare(string path, ILogger logger)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (OperatingSystem.IsWindows())
        {
            // Windows files inherit the directory's access list; there are no mode bits to set.
            Directory.CreateDirectory(directory);
            return;
        }

        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }

        try
        {
            // An empty file is a valid empty database to SQLite; creating it here is what decides its mode.
            using var created = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = OwnerOnlyFile,
            });
        }
        catch (IOException) when (File.Exists(path))
        {
            // An existing database: tightened below.
        }

        Tighten(path, logger);
        foreach (var suffix in Companions)
        {
            if (File.Exists(path + suffix))
            {
                Tighten(path + suffix, logger);
            }
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Tighten(string file, ILogger logger)
    {
        var mode = File.GetUnixFileMode(file);
        if ((mode & Others) == 0)
        {
            return;
        }

        var tightened = mode & ~Others;
        try
        {
            File.SetUnixFileMode(file, tightened);
            Log.FileModeTightened(logger, file, Octal(mode), Octal(tightened));
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            // Not the file's owner (a volume prepared by someone else): the node still runs, and says what is exposed.
            Log.FileModeNotTightened(logger, file, Octal(mode), ex);
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');
}
