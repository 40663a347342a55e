using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;

using ClusterQueue.Contracts;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The node as a separate operating-system process (the built ClusterQueue.Node.dll next to the tests), so a test
/// can kill it with SIGKILL or stop it with SIGTERM exactly as an orchestrator would.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private int _disposed;

    private NodeProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", NodeHost.AdminToken);
    }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The operating system's id of the node's process, for reading its memory in /proc.</summary>
    public int ProcessId => _process.Id;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the process wrote, for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts a node; <paramref name="unset"/> names variables of this process's environment the node must not inherit;
    /// <paramref name="launcher"/> is a command the node runs under (its arguments, then "dotnet" and the node's own).
    /// </summary>
    public static async Task<NodeProcess> StartAsync(
        string databasePath, IDictionary<string, string>? settings = null, IEnumerable<string>? unset = null, IReadOnlyList<string>? launcher = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = LoopbackServer.FreePort();
            var node = Launch(port, databasePath, settings, unset, launcher);
            try
            {
                await node.WaitUntilReadyAsync(TimeSpan.FromSeconds(60));
                return node;
            }
            catch (InvalidOperationException) when (attempt < 3 && node.HasExited)
            {
                // The free port may have been taken between its choice and the node's bind, by another node's remoting
                // on an ephemeral port (seen once in a CI run): that is a new port, not a failed test. The exit waits for the
                // rest of the output.
                await node._process.WaitForExitAsync();
                await node.DisposeAsync();
                if (!node.Output.Contains($"Failed to bind to address http://127.0.0.1:{port}", StringComparison.Ordinal))
                {
                    throw;
                }
            }
        }
    }

    private static NodeProcess Launch(
        int port, string databasePath, IDictionary<string, string>? settings, IEnumerable<string>? unset, IReadOnlyList<string>? launcher)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ClusterQueue.Node.dll");
        var start = new ProcessStartInfo(launcher is [var program, ..] ? program : "dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(databasePath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        IEnumerable<string> arguments = launcher is null ? [] : [.. launcher.Skip(1), "dotnet"];
        foreach (var argument in arguments.Concat([dll, "--urls", $"http://127.0.0.1:{port}"]))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["ClusterQueue__Sqlite__Path"] = databasePath;
        start.Environment["ClusterQueue__AdminToken"] = NodeHost.AdminToken;
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        foreach (var name in unset ?? [])
        {
            start.Environment.Remove(name);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var node = new NodeProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill.</summary>
    /// <summary>
    /// Posts numbered messages to the group until stopped (or the node dies), recording the id of every one answered
    /// 202, with when: exactly the messages the node owes a delivery.
    /// </summary>
    public async Task SendUntilStoppedAsync(string group, string sender, ConcurrentDictionary<string, DateTimeOffset> acknowledged, CancellationToken stop)
    {
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var response = await Client.PostAsync($"/hooks/{group}", new StringContent($"{sender} message {n++}"), stop);
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    var accepted = await response.Content.ReadFromJsonAsync<IngestAccepted>(stop);
                    acknowledged[accepted!.MessageId] = DateTimeOffset.UtcNow;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
            {
                // The node is gone: this request was never acknowledged, so it is not owed a delivery.
                if (!stop.IsCancellationRequested)
                {
                    await Task.Delay(10, CancellationToken.None);
                }
            }
        }
    }

    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as Kubernetes sends before a pod stops; waits for the process to exit.</summary>
    public async Task TerminateAsync(TimeSpan timeout)
    {
        await SignalTerminateAsync();
        await WaitForExitAsync(timeout);
    }

    /// <summary>Sends SIGTERM and returns at once: the node drains while the caller watches.</summary>
    public async Task SignalTerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
    }

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
    }

    private async Task WaitUntilReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The node exited with {_process.ExitCode} during start:\n{Output}");
            }

            try
            {
                using var response = await Client.GetAsync("/readyz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"The node was not ready within {timeout}:\n{Output}");
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


    public async ValueTask DisposeAsync()
    {
        // A test that restarts a node disposes the old process itself; the rig disposes whatever it holds.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Client.Dispose();
        if (!_process.HasExited)
        {
            // The whole tree: a node started under a launcher is that launcher's child.
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
