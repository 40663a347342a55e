using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>A downstream that asks for a pause (429 or 503 with Retry-After) pauses its group, and only its group.</summary>
public sealed class ThrottleTests
{
    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task RetryAfter_PausesTheGroupWithoutCountingTheAttempt_WhileOtherGroupsGoOn(int status)
    {
        await using var downstream = await Downstream.StartAsync();
        var throttledCalls = 0;
        downstream.Reply = call => call.Path == "/paused" && Interlocked.Increment(ref throttledCalls) == 1
            ? new DownstreamReply(status, RetryAfter: "2")
            : DownstreamReply.Ok;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("steady", GroupDefinitions.Forwarding(downstream, "/steady", rate: 10, burst: 1, concurrency: 1));

        // One call at a time, so nothing of this group is in flight when the pause begins.
        await node.DefineGroupAsync("paused", GroupDefinitions.Forwarding(downstream, "/paused", rate: 1000, burst: 1000, concurrency: 1));
        await node.IngestManyAsync("steady", 50);

        var first = await node.IngestOkAsync("paused", """{"n":0}""");
        await node.IngestOkAsync("paused", """{"n":1}""");
        await node.IngestOkAsync("paused", """{"n":2}""");

        var paused = await Eventually.ReadAsync(() => node.StatsAsync("paused"), s => s is { Throttled: 1, PausedUntil: not null }, "the group to report its pause");
        var throttledAt = downstream.CallsTo("/paused")[0].ReceivedAt;
        Assert.True(paused.PausedUntil >= throttledAt + TimeSpan.FromSeconds(1.5), $"Paused until {paused.PausedUntil:O}, throttled at {throttledAt:O}.");

        var stats = await Eventually.ReadAsync(() => node.StatsAsync("paused"), s => s.Delivered == 3, "the paused group's three deliveries");
        Assert.Equal((1L, 0L), (stats.Throttled, stats.Failed));
        var calls = downstream.CallsTo("/paused").OrderBy(c => c.ReceivedAt).ToList();
        Assert.Equal(4, calls.Count);
        Assert.Equal((first, 1), (calls[0].MessageId, calls[0].Attempt));
        var resumedAfter = calls[1].ReceivedAt - throttledAt;
        Assert.True(resumedAfter >= TimeSpan.FromSeconds(1.5), $"The group was called again {resumedAfter.TotalMilliseconds:0} ms after Retry-After: 2.");
        Assert.Equal([1], calls.Skip(1).Where(c => c.MessageId == first).Select(c => c.Attempt));

        // At 10/s the other group should make about 15 calls in those 1.5 s; a third of that shows it was not paused too.
        var others = downstream.CallsTo("/steady").Count(c => c.ReceivedAt > throttledAt && c.ReceivedAt < throttledAt + TimeSpan.FromSeconds(1.5));
        Assert.True(others >= 5, $"The other group made only {others} calls during the pause.");
    }

    [Fact]
    public async Task ServiceUnavailableWithoutRetryAfter_IsAnOrdinaryFailedAttempt()
    {
        await using var downstream = await Downstream.StartAsync();
        var calls = 0;
        downstream.Reply = _ => Interlocked.Increment(ref calls) == 1 ? new DownstreamReply(503) : DownstreamReply.Ok;
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("flaky", GroupDefinitions.Forwarding(downstream, "/flaky") with
        {
            MaxAttempts = 3,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.2 },
        });

        var id = await node.IngestOkAsync("flaky", "{}");

        var stats = await Eventually.ReadAsync(() => node.StatsAsync("flaky"), s => s.Delivered == 1, "the retried message to be delivered");
        Assert.Equal((1L, 0L), (stats.Failed, stats.Throttled));
        Assert.Null(stats.PausedUntil);
        Assert.Equal([(id, 1), (id, 2)], downstream.CallsTo("/flaky").Select(c => (c.MessageId, c.Attempt)));
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.Equal(("delivered", 2), (status.State, status.Attempts));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("Wed, 21 Oct 2015 07:28:00 GMT")]
    public async Task RetryAfterOfZeroOrThePast_PausesTheGroupForTheMinimumThrottlePause_NotAHotLoop(string retryAfter)
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(429, RetryAfter: retryAfter);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("eager", GroupDefinitions.Forwarding(downstream, "/eager"));

        await node.IngestOkAsync("eager", "{}");
        await downstream.WaitUntilAsync(d => d.CallsTo("/eager").Count >= 1, TimeSpan.FromSeconds(10), "the first call");
        var first = downstream.CallsTo("/eager")[0].ReceivedAt;
        var window = TimeSpan.FromSeconds(3);
        await Task.Delay(first + window + TimeSpan.FromMilliseconds(200) - DateTimeOffset.UtcNow);

        // At the default 1 s minimum pause: calls at about 0, 1, 2 and 3 s. Without it, hundreds.
        var calls = downstream.CallsTo("/eager").Count(c => c.ReceivedAt <= first + window);
        Assert.InRange(calls, 2, 5);
        var stats = await node.StatsAsync("eager");
        Assert.Equal((0L, 0L), (stats.Failed, stats.Dead));
    }

    [Fact]
    public async Task ThrottledOverAndOver_PastTheBoundTheThrottlesCount_AndTheMessageDeadLettersWithItsHistory()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(429, RetryAfter: "0", Body: "slow down");
        await using var node = NodeHost.Start(new Dictionary<string, string?>
        {
            ["ClusterQueue:Processing:MinThrottlePause"] = "00:00:00.050",
            ["ClusterQueue:Processing:MaxConsecutiveThrottles"] = "3",
        });
        await node.DefineGroupAsync("refusing", GroupDefinitions.Forwarding(downstream, "/refusing") with
        {
            MaxAttempts = 2,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.2 },
        });

        var id = await node.IngestOkAsync("refusing", "{}");

        var dead = await Eventually.ReadAsync(() => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!, s => s!.State == "dead", "the message to be dead-lettered");

        // Three throttles that do not count, then two that do: maxAttempts 2.
        Assert.Equal([1, 1, 1, 1, 2], downstream.CallsTo("/refusing").Select(c => c.Attempt));
        Assert.Equal(2, dead!.Attempts);
        Assert.Contains("HTTP 429", dead.LastError, StringComparison.Ordinal);
        var history = dead.AttemptHistory!;
        Assert.Equal(["throttled", "throttled", "throttled", "failed", "dead"], history.Select(a => a.Outcome));
        Assert.Equal([1, 1, 1, 1, 2], history.Select(a => a.Attempt));
        Assert.All(history, a => Assert.Equal(429, a.Status));
        var stats = await node.StatsAsync("refusing");
        Assert.Equal((2L, 1L, 0L), (stats.Failed, stats.Dead, stats.Delivered));
    }
}
