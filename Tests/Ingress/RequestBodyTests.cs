using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace ClusterQueue.Tests.Ingress;

/// <summary>
/// Reading request bodies from clients that do not play along: headers whose body never comes, uploads cut off
/// halfway, more bytes in progress at once than the node will hold.
/// </summary>
public sealed partial class RequestBodyTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Answer = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Ingest_WhileHundredsOfUploadsSendOnlyHeaders_UnderAHeapLimit_AnswersRealPostsAndStaysUp()
    {
        const int Attackers = 450;
        const int Posts = 20;
        using var directory = new TempDirectory();
        await using var downstream = await Downstream.StartAsync();

        // 384 MiB of GC heap: 450 declared mebibytes cannot fit if each is set aside before its bytes arrive.
        await using var node = await NodeProcess.StartAsync(
            directory.File("clusterqueue.db"),
            new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x18000000" });
        using (var put = await node.Client.PutAsJsonAsync("/v1/groups/flood", GroupDefinitions.Forwarding(downstream, "/flood")))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        var idle = ResidentKiB(node.ProcessId);
        var attackers = new List<RawConnection>(Attackers);
        using var stopTrickle = new CancellationTokenSource();
        var trickle = Task.CompletedTask;
        try
        {
            var head = RawConnection.PostHead(node.BaseAddress, "/hooks/flood", ["Content-Type: application/octet-stream", "Content-Length: 1048576"]);
            for (var i = 0; i < Attackers; i++)
            {
                var connection = await RawConnection.OpenAsync(node.BaseAddress);
                attackers.Add(connection);
                await connection.SendAsync(head);
            }

            // Headers only, then a trickle: Kestrel cuts a body slower than 240 bytes/s after 5 s, and the attack has
            // to last the whole test on a slow machine, not only its first seconds.
            trickle = TrickleAsync(attackers, stopTrickle.Token);
            var underAttack = 0L;
            for (var i = 0; i < 6; i++)
            {
                await Task.Delay(500);
                underAttack = Math.Max(underAttack, ResidentKiB(node.ProcessId));
            }

            var body = new byte[200 * 1024];
            Random.Shared.NextBytes(body);
            using var gate = new SemaphoreSlim(4);
            var answers = await Task.WhenAll(Enumerable.Range(0, Posts).Select(async _ =>
            {
                await gate.WaitAsync();
                try
                {
                    using var content = new ByteArrayContent(body);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    using var response = await node.Client.PostAsync("/hooks/flood", content);
                    return (Status: (int)response.StatusCode, RetryAfter: response.Headers.RetryAfter is not null, Text: await response.Content.ReadAsStringAsync());
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return (Status: 0, RetryAfter: false, Text: ex.Message);
                }
                finally
                {
                    gate.Release();
                }
            }));
            var afterPosts = ResidentKiB(node.ProcessId);

            var accepted = answers.Count(a => a.Status == StatusCodes.Status202Accepted);
            output.WriteLine($"{accepted} of {Posts} posts answered 202; answers: {string.Join(", ", answers.GroupBy(a => a.Status).Select(g => $"{g.Key} x{g.Count()}"))}");
            output.WriteLine($"node VmRSS: {idle} KiB idle, {underAttack} KiB under attack, {afterPosts} KiB after the posts; VmHWM {PeakKiB(node.ProcessId)} KiB (-1: the process is gone)");
            Assert.False(node.HasExited, $"the node died (exit code {(node.HasExited ? node.ExitCode : 0)}):\n{Tail(node.Output)}");
            Assert.All(answers, a => Assert.True(
                a.Status == StatusCodes.Status202Accepted || (a.Status == StatusCodes.Status503ServiceUnavailable && a.RetryAfter),
                $"answered {a.Status}: {a.Text}"));

            // Connections that sent nothing hold next to nothing, so the bound is far off: real posts get through.
            Assert.True(accepted >= Posts * 3 / 4, $"only {accepted} of {Posts} posts were accepted");
            Assert.True(!node.Output.Contains("OutOfMemory", StringComparison.Ordinal), Tail(node.Output));
            using var ready = await node.Client.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
        finally
        {
            await stopTrickle.CancelAsync();
            await trickle;
            foreach (var connection in attackers)
            {
                await connection.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Ingest_WhenUploadsInProgressHoldTheBound_Answers503WithRetryAfter_AndTheBoundFreesOnEveryPath()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = new KestrelNode(new Dictionary<string, string?> { ["ClusterQueue:Ingress:MaxBufferedBytes"] = "1048576" });
        await node.DefineGroupAsync("bounded", GroupDefinitions.Forwarding(downstream, "/bounded") with { MaxPayloadBytes = 500_000 });
        var body = new byte[300_000];

        // Two uploads stop halfway and keep their 400,000 bytes each: a 300,000-byte body no longer fits in 1 MiB.
        var stalled = new List<RawConnection>();
        foreach (var _ in Enumerable.Range(0, 2))
        {
            var connection = await RawConnection.OpenAsync(node.BaseAddress);
            stalled.Add(connection);
            await connection.SendAsync(RawConnection.PostHead(node.BaseAddress, "/hooks/bounded", ["Content-Type: application/octet-stream", "Content-Length: 480000"]));
            await connection.SendAsync(new byte[400_000]);
        }

        var refused = await Eventually.ReadAsync(
            () => PostAsync(node.Client, body),
            a => a.Status != StatusCodes.Status202Accepted,
            "a post refused while the stalled uploads hold the bound");
        Assert.True(refused.Status == StatusCodes.Status503ServiceUnavailable, $"{refused.Status}: {refused.Text}");
        Assert.True(refused.RetryAfter, "a 503 without Retry-After");
        Assert.Equal("application/problem+json", refused.ContentType);

        // Hanging up gives their bytes back.
        foreach (var connection in stalled)
        {
            connection.Reset();
        }

        await Eventually.ReadAsync(() => PostAsync(node.Client, body), a => a.Status == StatusCodes.Status202Accepted, "a post accepted once the stalled uploads hung up");

        // An accepted body gives its bytes back once stored: many in a row, each of them alone more than half the bound.
        for (var i = 0; i < 10; i++)
        {
            var answer = await PostAsync(node.Client, body);
            Assert.True(answer.Status == StatusCodes.Status202Accepted, $"post {i}: {answer.Status} {answer.Text}");
        }

        // So does a refused one.
        for (var i = 0; i < 5; i++)
        {
            var tooLarge = await PostAsync(node.Client, new byte[600_000], chunked: true);
            Assert.True(tooLarge.Status == StatusCodes.Status413PayloadTooLarge, $"{tooLarge.Status}: {tooLarge.Text}");
        }

        var after = await PostAsync(node.Client, body);
        Assert.True(after.Status == StatusCodes.Status202Accepted, $"{after.Status}: {after.Text}");
    }

    [Fact]
    public async Task Ingest_ClientsThatHangUpMidBody_AreOneInformationLineEach_WithNoErrorOrStackTrace()
    {
        const int Closed = 6;
        const int Reset = 6;
        const int Stalled = 2;
        using var directory = new TempDirectory();
        await using var downstream = await Downstream.StartAsync();
        await using var node = await NodeProcess.StartAsync(
            directory.File("clusterqueue.db"),
            new Dictionary<string, string> { ["Logging:LogLevel:ClusterQueue"] = "Information" });
        using (var put = await node.Client.PutAsJsonAsync("/v1/groups/aborts", GroupDefinitions.Forwarding(downstream, "/aborts")))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        var head = RawConnection.PostHead(node.BaseAddress, "/hooks/aborts", ["Content-Type: application/json", "Content-Length: 10000"]);
        var stalled = new List<RawConnection>();
        try
        {
            for (var i = 0; i < Closed + Reset + Stalled; i++)
            {
                var connection = await RawConnection.OpenAsync(node.BaseAddress);
                await connection.SendAsync(head);
                await connection.SendAsync(new byte[i < Closed + Reset ? 5000 : 100]);
                if (i < Closed)
                {
                    // Half the body, then a plain close (FIN).
                    await Task.Delay(50);
                    await connection.DisposeAsync();
                }
                else if (i < Closed + Reset)
                {
                    await Task.Delay(50);
                    connection.Reset();
                }
                else
                {
                    // A few bytes and silence: Kestrel's minimum data rate cuts these after its 5 s grace.
                    stalled.Add(connection);
                }
            }

            await Eventually.TrueAsync(
                () => AbortLines(node.Output) >= Closed + Reset + Stalled,
                $"{Closed + Reset + Stalled} aborted uploads logged; output so far:\n{node.Output}",
                TimeSpan.FromSeconds(40));
            await Task.Delay(TimeSpan.FromSeconds(1));

            var log = node.Output;
            output.WriteLine(log);
            Assert.Equal(Closed + Reset + Stalled, AbortLines(log));
            Assert.DoesNotContain("fail:", log, StringComparison.Ordinal);
            Assert.DoesNotMatch(StackFrame(), log);
            var stats = (await node.Client.GetFromJsonAsync<ClusterQueue.Contracts.GroupStats>("/v1/groups/aborts/stats"))!;
            Assert.Equal(0, stats.Ingested);
        }
        finally
        {
            foreach (var connection in stalled)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private static int AbortLines(string log) => AbortLine().Count(log);

    private static async Task<(int Status, bool RetryAfter, string? ContentType, string Text)> PostAsync(HttpClient client, byte[] body, bool chunked = false)
    {
        using HttpContent content = chunked ? new StreamContent(new NonSeekableStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await client.PostAsync("/hooks/bounded", content);
        return ((int)response.StatusCode, response.Headers.RetryAfter is not null, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Sends a little on every connection every half second until stopped; a connection the node closed is left alone.</summary>
    private static async Task TrickleAsync(List<RawConnection> connections, CancellationToken stop)
    {
        var bytes = new byte[512];
        var open = new HashSet<RawConnection>(connections);
        while (!stop.IsCancellationRequested)
        {
            foreach (var connection in open.ToList())
            {
                try
                {
                    await connection.SendAsync(bytes, stop);
                }
                catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
                {
                    open.Remove(connection);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            try
            {
                await Task.Delay(500, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static long ResidentKiB(int pid) => ProcStatus(pid, "VmRSS:");

    private static long PeakKiB(int pid) => ProcStatus(pid, "VmHWM:");

    /// <summary>A figure from /proc/{pid}/status in KiB; -1 once the process is gone.</summary>
    private static long ProcStatus(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
            return line is null ? -1 : long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static string Tail(string log) => log.Length <= 4000 ? log : log[^4000..];

    [GeneratedRegex(@"Upload to group aborts ended early")]
    private static partial Regex AbortLine();

    [GeneratedRegex(@"^\s+at \S", RegexOptions.Multiline)]
    private static partial Regex StackFrame();

    /// <summary>A stream that cannot tell its length, so HttpClient sends its bytes chunked.</summary>
    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
