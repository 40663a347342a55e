using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The SQS-compatible server (fauxqs) the SQS tests run against. <c>./test.sh</c> starts one and passes it in
/// <c>CLUSTERQUEUE_TEST_SQS_URL</c>; a test run from an IDE starts its own from <c>tools/node_modules</c>, on a free
/// loopback port, and stops it afterwards. With neither, the tests fail rather than skip: a missing backend must
/// never pass as a green run.
/// </summary>
public sealed class SqsEmulator : IAsyncLifetime
{
    public const string UrlVariable = "CLUSTERQUEUE_TEST_SQS_URL";

    private Process? _process;
    private readonly StringBuilder _output = new();

    public Uri Endpoint { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(UrlVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Endpoint = new Uri(configured);
            return;
        }

        var tools = FindToolsDirectory();
        if (tools is null || !Directory.Exists(Path.Combine(tools, "node_modules", "fauxqs")))
        {
            throw new InvalidOperationException(
                $"No SQS emulator: {UrlVariable} is not set and tools/node_modules/fauxqs is missing. Run ./test.sh, which installs and starts fauxqs (or run 'npm ci --prefix tools' once).");
        }

        var port = LoopbackServer.FreePort();
        var start = new ProcessStartInfo("node")
        {
            ArgumentList =
            {
                "--input-type=module",
                "-e",
                $"import {{buildApp}} from 'fauxqs'; const a = buildApp({{logger: false}}); await a.listen({{port: {port}, host: '127.0.0.1'}}); console.log('ready');",
            },
            WorkingDirectory = tools,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("No SQS emulator: node is not installed. Run ./test.sh, which installs Node.js and starts fauxqs.", e);
        }

        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Endpoint = new Uri($"http://127.0.0.1:{port}");
        await WaitUntilAnsweringAsync(TimeSpan.FromSeconds(30));
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A queue name no other test (or earlier run against the same server) uses.</summary>
    public static string UniqueQueueName(string purpose) => $"cqt-{purpose}-{Guid.NewGuid():N}";

    private async Task WaitUntilAnsweringAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process!.HasExited)
            {
                throw new InvalidOperationException($"fauxqs exited with code {_process.ExitCode} before answering:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(Endpoint);
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException($"fauxqs did not answer on {Endpoint} within {timeout}:\n{Output}", e);
                }
            }

            await Task.Delay(100);
        }
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static string? FindToolsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClusterQueue.sln")))
            {
                return Path.Combine(dir.FullName, "tools");
            }
        }

        return null;
    }

}
