using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Delayed messages (?delay=, ?notBefore=, ClusterQueue-Delay, ClusterQueue-Not-Before) on every store and queue.</summary>
public sealed class DelayedMessageTests(PostgresServer server, SqsEmulator emulator) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    // Stored times are whole milliseconds, so a message may be leased up to one millisecond before its exact due time.
    private static readonly TimeSpan StoredPrecision = TimeSpan.FromMilliseconds(2);

    // How late a due message may be on a slow, shared machine: the actor's timer, the lease and the HTTP call.
    private static readonly TimeSpan Late = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Embedded_DelayByQuery_IsHeldBackUntilDue_AndTheStatusSaysWhen()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("later", GroupDefinitions.Forwarding(downstream, "/later", rate: 100, burst: 10));

        var sent = DateTimeOffset.UtcNow;
        using var response = await node.Client.PostAsync("/hooks/later?delay=1.5", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;

        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.Equal("queued", status.State);
        Assert.InRange(status.VisibleAt!.Value, sent + TimeSpan.FromSeconds(1.5) - StoredPrecision, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1.5));

        await downstream.WaitUntilAsync(d => d.CallsTo("/later").Count == 1, TimeSpan.FromSeconds(1.5) + Late, "the delayed call");
        var call = downstream.CallsTo("/later").Single();
        Assert.True(call.ReceivedAt >= sent + TimeSpan.FromSeconds(1.5) - StoredPrecision, $"called {(call.ReceivedAt - sent).TotalMilliseconds:0} ms after the send, before its 1.5 s delay");
        Assert.Equal(1, call.Attempt);
    }

    [Fact]
    public async Task Embedded_NotBeforeHeader_AndManyDueAtOnce_GoOutAtTheGroupsRate()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("monday", GroupDefinitions.Forwarding(downstream, "/monday", rate: 5, burst: 2, concurrency: 4));

        var due = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1.5);
        var header = new Dictionary<string, string> { ["ClusterQueue-Not-Before"] = due.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) };
        for (var i = 0; i < 12; i++)
        {
            await node.IngestOkAsync("monday", $$"""{"n":{{i}}}""", header);
        }

        // 2 at once, then 5/s: the last leaves 2 s after the due time.
        await downstream.WaitUntilAsync(d => d.CallsTo("/monday").Count == 12, TimeSpan.FromSeconds(3.5) + Late, "the 12 calls");
        var arrivals = downstream.Arrivals("/monday");
        Assert.True(arrivals[0] >= due - StoredPrecision, $"first call {(due - arrivals[0]).TotalMilliseconds:0} ms before the due time");
        BucketAssert.WithinBucket("monday", 5, 2, arrivals);
        Assert.True(arrivals[^1] - arrivals[0] >= TimeSpan.FromSeconds(1.9), $"12 calls within {(arrivals[^1] - arrivals[0]).TotalMilliseconds:0} ms: the rate did not apply");
    }

    [Theory]
    [InlineData("?delay=soon", null, "delay")]
    [InlineData("?delay=-1", null, "delay")]
    [InlineData("?delay=604801", null, "delay")]
    [InlineData("?notBefore=2026-11-22T10:00:00", null, "notBefore")]
    [InlineData("?notBefore=tomorrow", null, "notBefore")]
    [InlineData("?notBefore=2999-01-01T00:00:00Z", null, "notBefore")]
    [InlineData("", "ClusterQueue-Delay: 1e3", "ClusterQueue-Delay")]
    [InlineData("?delay=1", "ClusterQueue-Not-Before: 2026-11-22T10:00:00Z", "ClusterQueue-Not-Before")]
    public async Task Embedded_BadSchedule_Is400NamingTheParameter_AndStoresNothing(string query, string? header, string field)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("later", GroupDefinitions.Forwarding(downstream, "/later", rate: 1, burst: 1));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/hooks/later" + query) { Content = new StringContent("{}") };
        if (header?.Split(": ") is [var name, var value])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await node.Client.SendAsync(request);

        await Problems.AssertValidationErrorAsync(response, field);
        Assert.Equal(0, (await node.StatsAsync("later")).Ingested);
    }

    [Fact]
    public async Task Embedded_PastNotBefore_MeansNow()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("late", GroupDefinitions.Forwarding(downstream, "/late", rate: 100, burst: 10));

        using var response = await node.Client.PostAsync("/hooks/late?notBefore=2020-01-01T00:00:00%2B02:00", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await downstream.WaitUntilAsync(d => d.CallsTo("/late").Count == 1, Late, "the call");
    }

    [Fact]
    public async Task Cluster_DelayedAtANodeThatDoesNotOwnTheGroup_IsDeliveredByTheOwnerWhenDue()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "delayed");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 100, burst: 10));

        var sent = DateTimeOffset.UtcNow;
        using var response = await cluster["node-a"].Client.PostAsync($"/hooks/{group}?delay=2", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count == 1, TimeSpan.FromSeconds(2) + Late, "the delayed call");
        var call = downstream.CallsTo($"/{group}").Single();
        Assert.True(call.ReceivedAt >= sent + TimeSpan.FromSeconds(2) - StoredPrecision, $"called {(call.ReceivedAt - sent).TotalMilliseconds:0} ms after the send, before its 2 s delay");
        Assert.Equal("node-b", call.Node);
    }

    [Fact]
    public async Task Sqs_DelayLongerThanOneSendCarries_HopsAndIsDeliveredOnceWhenDue()
    {
        await using var downstream = await Downstream.StartAsync();
        var settings = SqsNode.Settings(emulator.Endpoint);
        settings["ClusterQueue:Sqs:MaxDelay"] = "00:00:01";
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("hops", GroupDefinitions.Forwarding(downstream, "/hops", rate: 100, burst: 10));

        var sent = DateTimeOffset.UtcNow;
        var id = await node.IngestOkAsync("hops", "{}", new Dictionary<string, string> { ["ClusterQueue-Delay"] = "3.2" });
        var status = (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!;
        Assert.InRange(status.VisibleAt!.Value, sent + TimeSpan.FromSeconds(3.2) - StoredPrecision, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(3.2));

        // Sends of at most 1 s each: the message is received early three times and sent on, none of them an attempt.
        await downstream.WaitUntilAsync(d => d.CallsTo("/hops").Count == 1, TimeSpan.FromSeconds(3.2) + Late, "the delayed call");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var call = Assert.Single(downstream.CallsTo("/hops"));
        Assert.True(call.ReceivedAt >= sent + TimeSpan.FromSeconds(3.2) - StoredPrecision, $"called {(call.ReceivedAt - sent).TotalMilliseconds:0} ms after the send, before its 3.2 s delay");
        Assert.Equal(1, call.Attempt);
        Assert.Equal(id, call.MessageId);
    }
}
