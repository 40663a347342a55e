using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging;

namespace ClusterQueue.Tests.Processing;

/// <summary>
/// Waits longer than a timer can hold at once (about 49.7 days): a token of a tiny rate, a message delayed for months.
/// The actor waits them out in steps; it neither fails nor lets a restart hand out a fresh burst.
/// </summary>
public sealed class LongWaitTests
{
    [Fact]
    public async Task TinyRate_DeliversOnlyItsBurst_AndTheActorNeverFails()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        var logs = CapturedLogs.Attach(node.Services);

        // One token every 31 years: the burst of one is all this group may send for now.
        await node.DefineGroupAsync("trickle", GroupDefinitions.Forwarding(downstream, "/trickle", rate: 1e-9, burst: 1, concurrency: 4));

        for (var i = 0; i < 5; i++)
        {
            await node.IngestOkAsync("trickle", $$"""{"n":{{i}}}""");
        }

        await downstream.WaitUntilAsync(d => d.CallsTo("/trickle").Count >= 1, TimeSpan.FromSeconds(10), "the call the burst allows");

        // Every post wakes the group; a restarted actor would have sent the others within a second or two.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Single(downstream.CallsTo("/trickle"));
        var stats = await node.StatsAsync("trickle");
        Assert.Equal((1L, 4L), (stats.Delivered, stats.Queued));
        Assert.Empty(logs.AtLeast(LogLevel.Error));
    }

    [Fact]
    public async Task MessageDelayedSixtyDays_StaysQueued_WhileTheGroupGoesOn_AndNothingFails()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start(new Dictionary<string, string?> { ["ClusterQueue:Ingress:MaxDelay"] = "365.00:00:00" });
        var logs = CapturedLogs.Attach(node.Services);
        await node.DefineGroupAsync("someday", GroupDefinitions.Forwarding(downstream, "/someday", rate: 100, burst: 10));
        var sixtyDays = TimeSpan.FromDays(60);

        var sent = DateTimeOffset.UtcNow;
        using var delayed = await node.Client.PostAsync($"/hooks/someday?delay={sixtyDays.TotalSeconds}", new StringContent("""{"later":true}"""));
        Assert.Equal(HttpStatusCode.Accepted, delayed.StatusCode);
        var delayedId = (await delayed.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
        await Task.Delay(TimeSpan.FromSeconds(1));
        var nowId = await node.IngestOkAsync("someday", """{"later":false}""");

        await downstream.WaitUntilAsync(d => d.CallsTo("/someday").Count >= 1, TimeSpan.FromSeconds(10), "the undelayed message");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal([nowId], downstream.CallsTo("/someday").Select(c => c.MessageId));
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{delayedId}"))!;
        Assert.Equal("queued", status.State);
        Assert.InRange(status.VisibleAt!.Value, sent + sixtyDays - TimeSpan.FromSeconds(1), DateTimeOffset.UtcNow + sixtyDays);
        Assert.Empty(logs.AtLeast(LogLevel.Error));
    }
}
