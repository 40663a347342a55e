using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Storage;

/// <summary>
/// The node as a process with its SQLite file on a small tmpfs that fills up: ingress must say "retry later" (503 with
/// Retry-After), never 500, the node must leave the load balancer's rotation while writes fail, and it must come back
/// by itself once space returns, having lost nothing it acknowledged.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Why = "it mounts a small tmpfs to fill";
    private readonly TempDirectory _directory = new();
    private string? _mounted;

    [RootFact(Why)]
    public async Task DiskFull_Ingest503WithRetryAfterAndNotReady_ThenRecoversWithoutRestart_AndDeliversEveryAcknowledged()
    {
        RootFactAttribute.Require(Why);
        var disk = await MountTmpfsAsync("8m");
        await using var downstream = await Downstream.StartAsync();
        await using var node = await NodeProcess.StartAsync(
            Path.Combine(disk, "clusterqueue.db"),
            new Dictionary<string, string> { ["ClusterQueue:Processing:LeaseDuration"] = "00:00:03" });
        using (var put = await node.Client.PutAsJsonAsync("/v1/groups/full", GroupDefinitions.Forwarding(downstream, "/full")))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        // Senders post all along, as real ones would: before the disk fills, while it is full, and after space returns.
        var senders = new Senders(node.Client);
        using var stop = new CancellationTokenSource();
        var sending = Task.WhenAll(Enumerable.Range(0, 4).Select(i => senders.RunAsync(i, stop.Token)));
        await Eventually.TrueAsync(() => senders.Accepted >= 50, "ingress accepting before the disk fills", TimeSpan.FromSeconds(30));

        var filler = Path.Combine(disk, "filler");
        var filled = Fill(filler);

        // Space the WAL already had may take a few more commits; refusals start once it needs a fresh page.
        await Eventually.TrueAsync(() => senders.Refused > 0 || !senders.Other.IsEmpty, "a post refused with the disk full", TimeSpan.FromSeconds(60));
        Assert.True(senders.Other.IsEmpty, $"with the disk full ingress answered: {string.Join(", ", senders.Other)}");
        using (var ready = await node.Client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("store", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // While it stays full, readiness stays down: the probe, failing every second, must not flap it.
        var acceptedWhenFull = senders.Accepted;
        await Task.Delay(TimeSpan.FromSeconds(3));
        using (var stillFull = await node.Client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, stillFull.StatusCode);
        }

        // No requests while space comes back: the node must notice by itself (its probe), as a node out of rotation gets none.
        await stop.CancelAsync();
        await sending;
        var refusedWhenFull = senders.Refused;
        File.Delete(filler);
        var freed = Stopwatch.StartNew();
        await Eventually.ReadAsync(
            async () =>
            {
                using var ready = await node.Client.GetAsync("/readyz");
                return ready.StatusCode;
            },
            status => status == HttpStatusCode.OK,
            "/readyz ready again after space came back",
            TimeSpan.FromSeconds(30));
        var readyAfter = freed.Elapsed;
        var acceptedAtReady = senders.Accepted;
        using var stopAgain = new CancellationTokenSource();
        sending = Task.WhenAll(Enumerable.Range(0, 4).Select(i => senders.RunAsync(i, stopAgain.Token)));
        await Eventually.TrueAsync(() => senders.Accepted >= acceptedAtReady + 50, "ingress accepting again", TimeSpan.FromSeconds(30));
        await stopAgain.CancelAsync();
        await sending;

        Assert.True(senders.Other.IsEmpty, $"answers other than 202 and 503: {string.Join(", ", senders.Other)}\n{node.Output}");
        Assert.Equal(0, senders.RefusedWithoutRetryAfter);
        Assert.Equal(refusedWhenFull, senders.Refused);
        var acknowledged = senders.Acknowledged.Keys.ToHashSet(StringComparer.Ordinal);
        await downstream.WaitUntilAsync(
            d => acknowledged.IsSubsetOf(d.CallsTo("/full").Select(c => c.MessageId!)),
            TimeSpan.FromSeconds(90),
            "every acknowledged message delivered");
        var delivered = downstream.CallsTo("/full").Select(c => c.MessageId).Distinct().Count();
        Assert.False(node.HasExited, "the node exited");
        output.WriteLine(
            $"acknowledged {acknowledged.Count} ({acceptedWhenFull} by the first refusal), refused {senders.Refused} (503, Retry-After), " +
            $"delivered {delivered} distinct; filler {filled} bytes; ready {readyAfter.TotalMilliseconds:F0} ms after the filler was deleted");
    }

    /// <summary>Posts in a loop, recording each 202's message id and each refusal; bodies of a few KiB, so the WAL needs fresh pages.</summary>
    private sealed class Senders(HttpClient client)
    {
        private int _accepted;
        private int _refused;
        private int _refusedWithoutRetryAfter;

        public ConcurrentDictionary<string, bool> Acknowledged { get; } = new(StringComparer.Ordinal);

        public ConcurrentBag<string> Other { get; } = [];

        public int Accepted => Volatile.Read(ref _accepted);

        public int Refused => Volatile.Read(ref _refused);

        public int RefusedWithoutRetryAfter => Volatile.Read(ref _refusedWithoutRetryAfter);

        public async Task RunAsync(int sender, CancellationToken stop)
        {
            var padding = new string('x', 4000);
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                try
                {
                    using var response = await client.PostAsync("/hooks/full", new StringContent($"sender {sender} message {n} {padding}", Encoding.UTF8, "text/plain"), stop);
                    switch (response.StatusCode)
                    {
                        case HttpStatusCode.Accepted:
                            Acknowledged[(await response.Content.ReadFromJsonAsync<IngestAccepted>(stop))!.MessageId] = true;
                            Interlocked.Increment(ref _accepted);
                            break;
                        case HttpStatusCode.ServiceUnavailable:
                            Interlocked.Increment(ref _refused);
                            if (response.Headers.RetryAfter is null || response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                            {
                                Interlocked.Increment(ref _refusedWithoutRetryAfter);
                            }

                            // A sender backs off a little; Retry-After's full 5 s would make the test slow.
                            await Task.Delay(50, stop);
                            break;
                        default:
                            Other.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(stop)}");
                            break;
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Writes until the file system refuses another byte; returns how many it took.</summary>
    private static long Fill(string path)
    {
        long written = 0;
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1);
        foreach (var chunk in new[] { 1 << 20, 64 << 10, 4 << 10, 512 })
        {
            var bytes = new byte[chunk];
            while (true)
            {
                try
                {
                    file.Write(bytes);
                    written += chunk;
                }
                catch (IOException)
                {
                    break;
                }
            }
        }

        return written;
    }

    private async Task<string> MountTmpfsAsync(string size)
    {
        var target = _directory.File("disk");
        Directory.CreateDirectory(target);
        var (code, text) = await RunAsync("mount", "-t", "tmpfs", "-o", $"size={size},mode=0700", "tmpfs", target);
        Assert.True(code == 0, $"mount -t tmpfs failed ({code}): {text}");
        _mounted = target;
        return target;
    }

    private static async Task<(int Code, string Output)> RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // The node is stopped by then (disposed in the test); a lazy unmount still frees a mount something holds open.
        if (_mounted is not null && (await RunAsync("umount", _mounted)).Code != 0)
        {
            await RunAsync("umount", "-l", _mounted);
        }

        _directory.Dispose();
    }
}
