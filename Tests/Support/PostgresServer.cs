using System.Diagnostics;
using Npgsql;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The PostgreSQL server the PostgreSQL tests run against. <c>./test.sh</c> starts a throwaway cluster and passes it in
/// <c>CLUSTERQUEUE_TEST_POSTGRES</c>; a test run from an IDE starts its own the same way (initdb into a temp directory,
/// pg_ctl on a free loopback port) and stops and deletes it afterwards. With neither, the tests fail rather than skip: a
/// missing backend must never pass as a green run. Each test takes a database of its own from
/// <see cref="CreateDatabaseAsync"/>, so tests never see each other's rows, whichever server they share.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string ConnectionVariable = "CLUSTERQUEUE_TEST_POSTGRES";

    // Debian installs each major version's programs here, out of PATH.
    private const string DebianRoot = "/usr/lib/postgresql";

    // pg_ctl -w waits this long for the server to accept connections; a cold start on a loaded machine still fits.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private NpgsqlDataSource? _admin;
    private string? _binaries;
    private string? _directory;

    public string Host { get; private set; } = "127.0.0.1";

    public int Port { get; private set; }

    /// <summary>The <c>postgres</c> database, as the superuser: for creating databases, not for tests' tables.</summary>
    public string AdminConnectionString { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(ConnectionVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var given = new NpgsqlConnectionStringBuilder(configured);
            Host = given.Host ?? "localhost";
            Port = given.Port;
            AdminConnectionString = given.ConnectionString;
        }
        else
        {
            _binaries = FindBinaries() ?? throw new InvalidOperationException(
                $"No PostgreSQL: {ConnectionVariable} is not set and no initdb/pg_ctl was found under {DebianRoot}/*/bin or on PATH. Run ./test.sh, which installs PostgreSQL and starts a throwaway server (or install the postgresql package).");
        }

        try
        {
            if (_binaries is not null)
            {
                await StartOwnClusterAsync();
            }

            // One round trip now, so a server that is down or refuses us fails here, once, not in every test.
            _admin = NpgsqlDataSource.Create(AdminConnectionString);
            await using var connection = await _admin.OpenConnectionAsync();
        }
        catch
        {
            // A fixture whose start failed may never be disposed; a half-started server must not outlive the run.
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
            _admin = null;
        }

        await StopOwnClusterAsync();
    }

    /// <summary>
    /// A new, empty database no other test uses, and a pooled connection string to it. Databases are not dropped: the
    /// throwaway cluster goes away whole at the end of the run.
    /// </summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"cq_test_{Guid.NewGuid().ToString("N")[..12]}";
        await using (var create = _admin!.CreateCommand($"CREATE DATABASE {name}"))
        {
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(AdminConnectionString)
        {
            Database = name,
            Pooling = true,
            MaxPoolSize = 50,
        }.ConnectionString;
    }

    /// <summary>The node's PostgreSQL store (its migrations applied, one writer) on <paramref name="connectionString"/>, else on a new database.</summary>
    public async Task<ClusterQueue.Node.Storage.PostgresDatabase> OpenStoreAsync(string? connectionString = null)
    {
        var options = new ClusterQueue.Node.Storage.StorageOptions
        {
            Store = "postgres",
            Postgres = new ClusterQueue.Node.Storage.PostgresOptions { ConnectionString = connectionString ?? await CreateDatabaseAsync(), Writers = 1 },
        };
        return new ClusterQueue.Node.Storage.PostgresDatabase(
            Microsoft.Extensions.Options.Options.Create(options), Microsoft.Extensions.Logging.Abstractions.NullLogger<ClusterQueue.Node.Storage.PostgresDatabase>.Instance);
    }

    private async Task StartOwnClusterAsync()
    {
        Port = LoopbackServer.FreePort();
        AdminConnectionString = $"Host={Host};Port={Port};Username=postgres;Database=postgres";

        // A short path: the server's unix socket lives in it, and socket paths are limited to about 100 bytes.
        _directory = Path.Combine(Path.GetTempPath(), $"cq-pg-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(_directory);
        if (Environment.IsPrivilegedProcess)
        {
            // PostgreSQL refuses to run as root; as root its programs run as postgres, which must own the directory.
            await RunAsync("chown", ["postgres:", _directory], "chown");
        }

        // UTF8 with the C locale whatever the machine's locale is; no fsync for files that are deleted at the end.
        await RunPostgresAsync("initdb", ["-D", DataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);

        // TCP on loopback only and the unix socket in the cluster's own directory, not the shared /var/run/postgresql.
        // Durability is traded for speed; max_connections leaves room for the tests' pools running side by side.
        var options = $"-p {Port} -c listen_addresses=127.0.0.1 -k '{_directory}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB";
        try
        {
            // -l: the server writes to a file, never to this process's pipes, which pg_ctl would otherwise hand down to it.
            await RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-l", LogFile, "-w", "-t", ((int)StartTimeout.TotalSeconds).ToString(), "-o", options, "start"]);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message}\nServer log:\n{ReadLog()}", e);
        }
    }

    private async Task StopOwnClusterAsync()
    {
        if (_directory is null)
        {
            return;
        }

        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try
            {
                // Immediate: nothing in the cluster is worth a clean shutdown, and the directory goes next.
                await RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-w", "-m", "immediate", "stop"]);
            }
            catch (InvalidOperationException)
            {
                // Already gone (or never up); either way nothing is left to stop.
            }
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // The OS temp cleaner gets it later; a leftover directory must not fail the run.
        }

        _directory = null;
    }

    private string DataDirectory => Path.Combine(_directory!, "data");

    private string LogFile => Path.Combine(_directory!, "postgres.log");

    private string ReadLog()
    {
        try
        {
            return File.ReadAllText(LogFile);
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>Runs one of PostgreSQL's programs, as postgres when this process is root, from the cluster's directory.</summary>
    private Task RunPostgresAsync(string program, IReadOnlyList<string> arguments)
    {
        var path = Path.Combine(_binaries!, program);
        return Environment.IsPrivilegedProcess
            ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments], program)
            : RunAsync(path, arguments, program);
    }

    private async Task RunAsync(string file, IReadOnlyList<string> arguments, string what)
    {
        var start = new ProcessStartInfo(file)
        {
            // The caller's working directory may be closed to the postgres user; the cluster's own directory is not.
            WorkingDirectory = _directory!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{what} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StartTimeout + TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{what} did not finish within {StartTimeout + TimeSpan.FromSeconds(30)}.");
        }

        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} failed with exit code {process.ExitCode}:\n{output}");
        }
    }

    /// <summary>The newest version's programs under Debian's directory, else initdb and pg_ctl from PATH.</summary>
    private static string? FindBinaries()
    {
        if (Directory.Exists(DebianRoot))
        {
            var newest = Directory.GetDirectories(DebianRoot)
                .Select(dir => (Dir: Path.Combine(dir, "bin"), Version: ParseVersion(Path.GetFileName(dir))))
                .Where(c => c.Version is not null && HasPrograms(c.Dir))
                .OrderByDescending(c => c.Version)
                .Select(c => c.Dir)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasPrograms);
    }

    // Directories are named by major version: "15", or "9.6" before PostgreSQL 10.
    private static Version? ParseVersion(string name) =>
        Version.TryParse(name.Contains('.') ? name : $"{name}.0", out var version) ? version : null;

    private static bool HasPrograms(string dir) =>
        File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"));
}
