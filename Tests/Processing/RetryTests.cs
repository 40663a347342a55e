using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Failed attempts: retries with backoff, the dead-letter queue, and redrive.</summary>
public sealed class RetryTests
{
    private static readonly RetryBackoffDefinition QuickBackoff = new() { InitialSeconds = 0.05, MaxSeconds = 0.2 };

    [Fact]
    public async Task FailingDownstream_RetriesUpToMaxAttempts_ThenDeadLetters_AndRedriveDeliversIt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500, Body: "boom");
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("failing", GroupDefinitions.Forwarding(downstream, "/failing") with { MaxAttempts = 3, RetryBackoff = QuickBackoff });

        var id = await node.IngestOkAsync("failing", """{"n":1}""");

        var status = await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "dead", "the message to be dead-lettered");
        Assert.Equal([1, 2, 3], downstream.CallsTo("/failing").Select(c => c.Attempt));
        Assert.All(downstream.CallsTo("/failing"), c => Assert.Equal(id, c.MessageId));
        Assert.Equal(3, status.Attempts);
        var letter = Assert.Single(await DeadLettersAsync(node, "failing"));
        Assert.Equal(id, letter.MessageId);
        Assert.Equal(3, letter.Attempts);
        Assert.Contains("HTTP 500", letter.LastError);
        var stats = await node.StatsAsync("failing");
        Assert.Equal((3L, 1L, 0L), (stats.Failed, stats.Dead, stats.Delivered));

        downstream.Reply = _ => DownstreamReply.Ok;
        using var redrive = await node.Client.PostAsync("/v1/groups/failing/dead-letters/redrive", content: null);
        Assert.Equal(HttpStatusCode.OK, redrive.StatusCode);
        Assert.Equal(new RedriveResult(1), await redrive.Content.ReadFromJsonAsync<RedriveResult>());

        await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "delivered", "the redriven message to be delivered");
        var again = downstream.CallsTo("/failing").Skip(3);
        Assert.Equal([(id, 1)], again.Select(c => (c.MessageId, c.Attempt)));
        Assert.Empty(await DeadLettersAsync(node, "failing"));
        stats = await node.StatsAsync("failing");
        Assert.Equal((0L, 1L), (stats.Dead, stats.Delivered));
    }

    [Fact]
    public async Task RedriveByMessageIds_RedrivesOnlyThoseNamed()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("picky", GroupDefinitions.Forwarding(downstream, "/picky") with { MaxAttempts = 1 });
        var ids = await node.IngestManyAsync("picky", 3);

        await Eventually.ReadAsync(() => DeadLettersAsync(node, "picky"), l => l.Count == 3, "three dead letters");
        downstream.Reply = _ => DownstreamReply.Ok;

        using var redrive = await node.Client.PostAsJsonAsync("/v1/groups/picky/dead-letters/redrive", new RedriveRequest { MessageIds = [ids[1]] });
        Assert.Equal(HttpStatusCode.OK, redrive.StatusCode);
        Assert.Equal(new RedriveResult(1), await redrive.Content.ReadFromJsonAsync<RedriveResult>());

        await Eventually.ReadAsync(() => StatusAsync(node, ids[1]), s => s.State == "delivered", "the named message to be delivered");

        // Anything else redriven would have been leased with it; give stray calls time to show anyway.
        await Task.Delay(300);
        Assert.Equal([ids[1]], downstream.CallsTo("/picky").Skip(3).Select(c => c.MessageId));
        Assert.Equal([ids[0], ids[2]], (await DeadLettersAsync(node, "picky")).Select(l => l.MessageId).Order());
        Assert.Equal("dead", (await StatusAsync(node, ids[0])).State);
        Assert.Equal("dead", (await StatusAsync(node, ids[2])).State);
    }

    [Fact]
    public async Task FailedAttempts_AreRetriedNoSoonerThanHalfTheExponentialBackoff()
    {
        var initial = TimeSpan.FromSeconds(0.2);
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("backoff", GroupDefinitions.Forwarding(downstream, "/backoff") with
        {
            MaxAttempts = 4,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = initial.TotalSeconds, MaxSeconds = 2 },
        });

        var id = await node.IngestOkAsync("backoff", "{}");

        await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "dead", "four attempts and a dead letter");
        var calls = downstream.CallsTo("/backoff");
        Assert.Equal([1, 2, 3, 4], calls.Select(c => c.Attempt));
        for (var n = 1; n < calls.Count; n++)
        {
            // The wait after attempt n is drawn from [d/2, d] with d = initial × 2^(n-1). Visibility is stored in whole
            // milliseconds, so a retry may come up to 1 ms before its exact due time.
            var atLeast = (initial * Math.Pow(2, n - 1) / 2) - TimeSpan.FromMilliseconds(2);
            var gap = calls[n].ReceivedAt - calls[n - 1].ReceivedAt;
            Assert.True(gap >= atLeast, $"Attempt {n + 1} came {gap.TotalMilliseconds:0} ms after attempt {n}, expected at least {atLeast.TotalMilliseconds:0} ms.");
        }
    }

    [Fact]
    public async Task HandlerTimeout_CountsAsAFailedAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(2));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("sluggish", GroupDefinitions.Forwarding(downstream, "/sluggish") with
        {
            HandlerTimeoutSeconds = 0.3,
            MaxAttempts = 2,
            RetryBackoff = QuickBackoff,
        });

        var id = await node.IngestOkAsync("sluggish", "{}");

        var status = await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "dead", "two timed-out attempts and a dead letter");
        Assert.Equal([1, 2], downstream.CallsTo("/sluggish").Select(c => c.Attempt));
        Assert.Contains("timed out", status.LastError);
        var letter = Assert.Single(await DeadLettersAsync(node, "sluggish"));
        Assert.Equal(2, letter.Attempts);
        Assert.Contains("timed out", letter.LastError);
        var stats = await node.StatsAsync("sluggish");
        Assert.Equal((2L, 1L, 0L), (stats.Failed, stats.Dead, stats.Delivered));
    }

    [Fact]
    public async Task TargetNotListening_DeadLettersWithAConnectionError()
    {
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("nowhere", new GroupDefinition
        {
            RatePerSecond = 1000,
            Burst = 1000,
            MaxConcurrency = 10,
            Target = new TargetDefinition { Url = $"http://127.0.0.1:{ClosedPort()}/hook" },
            MaxAttempts = 2,
            RetryBackoff = QuickBackoff,
        });

        var id = await node.IngestOkAsync("nowhere", "{}");

        var status = await Eventually.ReadAsync(() => StatusAsync(node, id), s => s.State == "dead", "the unreachable message to be dead-lettered");
        var letter = Assert.Single(await DeadLettersAsync(node, "nowhere"));
        Assert.Equal(2, letter.Attempts);
        Assert.StartsWith("connection failed", letter.LastError);
        Assert.Equal(letter.LastError, status.LastError);
    }

    /// <summary>A loopback port that was free a moment ago and has no listener now: connecting to it is refused.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task<MessageStatus> StatusAsync(NodeHost node, string id) =>
        (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;

    private static async Task<IReadOnlyList<DeadLetter>> DeadLettersAsync(NodeHost node, string group) =>
        (await node.Client.GetFromJsonAsync<DeadLetterList>($"/v1/groups/{group}/dead-letters"))!.DeadLetters;
}
