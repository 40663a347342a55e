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
}
