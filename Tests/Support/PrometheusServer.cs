using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// A real Prometheus (Debian's package, which <c>./test.sh</c> installs when it is missing) scraping one target every
/// second, on a free loopback port with its data in a temp directory, stopped and deleted on dispose. Without the
/// <c>prometheus</c> program the test fails rather than skips: a missing backend must never pass as a green run.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly StringBuilder _output = new();
    private readonly HttpClient _client = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Process? _process;

    public Uri BaseAddress { get; private set; } = null!;

    public static async Task<PrometheusServer> StartAsync(Uri target)
    {
        var server = new PrometheusServer();
        try
        {
            await server.StartInternalAsync(target);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a PromQL instant query and returns each series' labels and value.</summary>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string promQl)
    {
        using var response = await _client.GetAsync(new Uri(BaseAddress, $"/api/v1/query?query={Uri.EscapeDataString(promQl)}"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Prometheus answered {(int)response.StatusCode} to {promQl}: {text}");
        var result = JsonDocument.Parse(text).RootElement.GetProperty("data").GetProperty("result");
        return [.. result.EnumerateArray().Select(series => (
            (IReadOnlyDictionary<string, string>)series.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)))];
    }

    /// <summary>The health of the scrape target as Prometheus last saw it, with its last error.</summary>
    public async Task<(string Health, string LastError)> TargetAsync()
    {
        var text = await _client.GetStringAsync(new Uri(BaseAddress, "/api/v1/targets"));
        var target = JsonDocument.Parse(text).RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray().Single();
        return (target.GetProperty("health").GetString()!, target.GetProperty("lastError").GetString()!);
    }

    /// <summary>Runs <c>promtool check metrics</c> on an exposition; returns its exit code and what it printed.</summary>
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition)
    {
        using var process = Process.Start(new ProcessStartInfo(Find("promtool"))
        {
            ArgumentList = { "check", "metrics" },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await errors);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        _client.Dispose();
        _directory.Dispose();
    }

    private async Task StartInternalAsync(Uri target)
    {
        var port = LoopbackServer.FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
        var config = _directory.File("prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: clusterqueue
                static_configs:
                  - targets: ['{target.Authority}']
            """);
        var start = new ProcessStartInfo(Find("prometheus"))
        {
            ArgumentList =
            {
                $"--config.file={config}",
                $"--storage.tsdb.path={_directory.File("data")}",
                $"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                using var ready = await _client.GetAsync(new Uri(BaseAddress, "/-/ready"));
                if (ready.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"Prometheus did not become ready on {BaseAddress}: {Output()}");
            }

            await Task.Delay(100);
        }
    }

    private static string Find(string program)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin"))
        {
            var path = Path.Combine(directory, program);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new InvalidOperationException(
            $"No {program}: Prometheus is not installed. Run ./test.sh, which installs Debian's prometheus package when it is missing (or apt-get install prometheus).");
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }
}
