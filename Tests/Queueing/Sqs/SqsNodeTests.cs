using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// The whole node with <c>ClusterQueue:Queue = sqs</c> against the emulator: what a group promises (rate,
/// concurrency, one call at a time per message, retries, dead letters, large bodies) holds through SQS, an SQS outage
/// or SQS throttling is a clean 503, and SIGKILL loses nothing acknowledged.
/// </summary>
public sealed class SqsNodeTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>
{
    [Fact]
    public async Task Backlog_IsDeliveredThroughSqsWithinTheGroupsBucketAndConcurrency()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(150));
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("paced", GroupDefinitions.Forwarding(downstream, "/paced", rate: 10, burst: 3, concurrency: 2));

        var ids = await node.IngestManyAsync("paced", 30, senders: 8);
        await downstream.WaitUntilAsync(d => d.CallsTo("/paced").Count >= 30, TimeSpan.FromSeconds(30), "30 deliveries");

        Assert.Equal(ids.Order(StringComparer.Ordinal), downstream.CallsTo("/paced").Select(c => c.MessageId!).Order(StringComparer.Ordinal));
        BucketAssert.WithinBucket("paced", 10, 3, downstream.Arrivals("/paced"));
        Assert.InRange(downstream.MaxInFlight("/paced"), 1, 2);
        var stats = await Eventually.ReadAsync(() => node.StatsAsync("paced"), s => s.Delivered == 30, "30 delivered in stats");
        Assert.Equal(0, stats.Queued);
    }

    [Fact]
    public async Task HandlerSlowerThanTheLease_IsCalledOnceBecauseItsVisibilityIsExtended()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(5));
        var settings = SqsNode.Settings(emulator.Endpoint);
        settings["ClusterQueue:Processing:LeaseDuration"] = "00:00:02";
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("slow", GroupDefinitions.Forwarding(downstream, "/slow") with { HandlerTimeoutSeconds = 20 });

        var id = await node.IngestOkAsync("slow", """{"slow":true}""");
        var status = await Eventually.ReadAsync(
            async () => (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!,
            s => s.State == "delivered",
            "the slow message delivered",
            TimeSpan.FromSeconds(20));

        // Two and a half leases went by during the call; without extension SQS would have handed the message out again.
        Assert.Single(downstream.CallsTo("/slow"));
        Assert.Equal(1, status.Attempts);
    }

    [Fact]
    public async Task FailingDownstream_RetriesThenDeadLetters_AndRedriveDeliversIt()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(500);
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("flaky", GroupDefinitions.Forwarding(downstream, "/flaky") with
        {
            MaxAttempts = 3,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.1, MaxSeconds = 0.2 },
        });

        var id = await node.IngestOkAsync("flaky", """{"order":1}""");
        var dead = await Eventually.ReadAsync(
            async () => (await node.Client.GetFromJsonAsync<DeadLetterList>("/v1/groups/flaky/dead-letters"))!,
            list => list.DeadLetters.Count == 1,
            "the message dead-lettered",
            TimeSpan.FromSeconds(20));
        downstream.Reply = _ => DownstreamReply.Ok;
        using var redrive = await node.Client.PostAsync("/v1/groups/flaky/dead-letters/redrive", null);
        await downstream.WaitUntilAsync(d => d.CallsTo("/flaky").Count == 4, TimeSpan.FromSeconds(20), "the redriven call");

        var letter = Assert.Single(dead.DeadLetters);
        Assert.Equal(id, letter.MessageId);
        Assert.Equal(3, letter.Attempts);
        Assert.Contains("500", letter.LastError);
        Assert.Equal(HttpStatusCode.OK, redrive.StatusCode);
        Assert.Equal([1, 2, 3, 1], downstream.CallsTo("/flaky").Select(c => c.Attempt));
        Assert.All(downstream.CallsTo("/flaky"), c => Assert.Equal("""{"order":1}"""u8.ToArray(), c.Body));
        await Eventually.ReadAsync(() => node.StatsAsync("flaky"), s => s.Delivered == 1 && s.Dead == 0, "delivered after the redrive");
    }

    [Fact]
    public async Task ThrottledOverAndOver_PastTheBoundTheThrottlesCount_AndTheMessageDeadLetters()
    {
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(429, RetryAfter: "0", Body: "slow down");
        var settings = SqsNode.Settings(emulator.Endpoint);
        settings["ClusterQueue:Processing:MinThrottlePause"] = "00:00:00.050";
        settings["ClusterQueue:Processing:MaxConsecutiveThrottles"] = "3";
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("refusing", GroupDefinitions.Forwarding(downstream, "/refusing") with
        {
            MaxAttempts = 2,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.2 },
        });

        var id = await node.IngestOkAsync("refusing", "{}");

        var dead = await Eventually.ReadAsync(
            async () => (await node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}"))!,
            s => s.State == "dead",
            "the message dead-lettered",
            TimeSpan.FromSeconds(30));

        // Three throttles that do not count, then two that do (maxAttempts 2). SQS delays each returned copy by whole seconds.
        Assert.Equal([1, 1, 1, 1, 2], downstream.CallsTo("/refusing").Select(c => c.Attempt));
        Assert.Equal(2, dead.Attempts);
        Assert.Equal(["throttled", "throttled", "throttled", "failed", "dead"], dead.AttemptHistory!.Select(a => a.Outcome));
        Assert.All(dead.AttemptHistory!, a => Assert.Equal(429, a.Status));
    }

    [Fact]
    public async Task Body_Of300KiB_ReachesTheDownstreamIntactThroughThePayloadStore()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start(SqsNode.Settings(emulator.Endpoint));
        await node.DefineGroupAsync("big", GroupDefinitions.Forwarding(downstream, "/big"));
        var body = new byte[300 * 1024];
        Random.Shared.NextBytes(body);

        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/octet-stream");
        using var response = await node.Client.PostAsync("/hooks/big", content);
        await downstream.WaitUntilAsync(d => d.CallsTo("/big").Count == 1, TimeSpan.FromSeconds(15), "the large message");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var call = Assert.Single(downstream.CallsTo("/big"));
        Assert.Equal(body, call.Body);
        Assert.Equal("application/octet-stream", call.ContentType);
    }

    [Fact]
    public async Task Body_Of300KiB_WithS3AsThePayloadStore_ReachesTheDownstreamIntactAndLeavesTheBucketEmpty()
    {
        var bucket = $"cq-node-{Guid.NewGuid():N}";
        using var s3 = new Amazon.S3.AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials("test", "test"), new Amazon.S3.AmazonS3Config
        {
            ServiceURL = emulator.Endpoint.ToString(),
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
        });
        await s3.PutBucketAsync(bucket);
        await using var downstream = await Downstream.StartAsync();
        var settings = SqsNode.Settings(emulator.Endpoint);
        settings["ClusterQueue:Sqs:PayloadStore"] = "s3";
        settings["ClusterQueue:Sqs:PayloadBucket"] = bucket;
        settings["ClusterQueue:Sqs:S3ServiceUrl"] = emulator.Endpoint.ToString();
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("big", GroupDefinitions.Forwarding(downstream, "/big"));
        var body = new byte[300 * 1024];
        Random.Shared.NextBytes(body);

        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromSeconds(2));

        using var content = new ByteArrayContent(body);
        using var response = await node.Client.PostAsync("/hooks/big", content);
        var whileQueued = await s3.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = bucket });
        await downstream.WaitUntilAsync(d => d.CallsTo("/big").Count == 1, TimeSpan.FromSeconds(15), "the large message");
        await Eventually.ReadAsync(() => node.StatsAsync("big"), s => s.Delivered == 1, "the delivery recorded");

        // The payload goes after the delivery is recorded and SQS let go of the message, a moment after the stats say so.
        var left = await Eventually.ReadAsync(
            () => s3.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = bucket }),
            l => (l.S3Objects ?? []).Count == 0,
            "the payload deleted");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(body, Assert.Single(downstream.CallsTo("/big")).Body);
        Assert.Equal(300 * 1024, Assert.Single(whileQueued.S3Objects).Size);
        Assert.Empty(left.S3Objects ?? []);
    }

    [Fact]
    public async Task SqsDown_IngressAndGroupDefinitionAnswer503AndStoreNothing_ThenIngressRecoversByItself()
    {
        await using var relay = new TcpRelay(emulator.Endpoint);
        await using var downstream = await Downstream.StartAsync();
        var settings = SqsNode.Settings(relay.Endpoint);
        settings["ClusterQueue:Sqs:MaxAttempts"] = "2";
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("outage", GroupDefinitions.Forwarding(downstream, "/outage"));
        var before = await node.IngestOkAsync("outage", """{"n":"before"}""");

        relay.Cut();
        using var refused = await node.IngestAsync("outage", """{"n":"during"}""", headers: new Dictionary<string, string> { ["Idempotency-Key"] = "during-1" });
        var problem = await Problems.ReadAsync(refused, HttpStatusCode.ServiceUnavailable);
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        var statsDuringOutage = await node.StatsAsync("outage");
        using var defineDuringOutage = await node.Client.PutAsJsonAsync("/v1/groups/later", GroupDefinitions.Forwarding(downstream, "/later"));
        using var lookupDuringOutage = await node.Client.GetAsync("/v1/groups/later");
        relay.Restore();
        var after = await node.IngestOkAsync("outage", """{"n":"during"}""", new Dictionary<string, string> { ["Idempotency-Key"] = "during-1" });
        await downstream.WaitUntilAsync(d => d.CallsTo("/outage").Count == 2, TimeSpan.FromSeconds(20), "both acknowledged messages");

        Assert.Contains("SQS", problem.GetProperty("detail").GetString());
        Assert.NotNull(retryAfter);
        Assert.Equal(1, statsDuringOutage.Ingested);
        await Problems.ReadAsync(defineDuringOutage, HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.NotFound, lookupDuringOutage.StatusCode);
        Assert.Equal(new HashSet<string> { before, after }, downstream.CallsTo("/outage").Select(c => c.MessageId!).ToHashSet());
    }

    [Fact]
    public async Task SqsThrottlingSends_IngressAnswers503WithRetryAfterAndStoresNothing_WhileOneThrottledCallIsRetriedUnseen()
    {
        await using var proxy = await SqsProxy.StartAsync(emulator.Endpoint);
        await using var downstream = await Downstream.StartAsync();
        var settings = SqsNode.Settings(proxy.Endpoint);
        settings["ClusterQueue:Sqs:MaxAttempts"] = "2";
        await using var node = NodeHost.Start(settings);
        await node.DefineGroupAsync("busy", GroupDefinitions.Forwarding(downstream, "/busy"));

        // One throttled call: the SDK's retry rides it out and the sender never knows.
        proxy.Throttle("SendMessageBatch", calls: 1);
        var ridden = await node.IngestOkAsync("busy", """{"n":1}""");
        var sendsForTheFirst = proxy.Calls("SendMessageBatch");

        // Throttled through every attempt: 503 with Retry-After, and nothing kept.
        proxy.Throttle("SendMessageBatch");
        using var refused = await node.IngestAsync("busy", """{"n":2}""", headers: new Dictionary<string, string> { ["Idempotency-Key"] = "second" });
        var problem = await Problems.ReadAsync(refused, HttpStatusCode.ServiceUnavailable);
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        var sendsForTheSecond = proxy.Calls("SendMessageBatch") - sendsForTheFirst;
        var statsWhileThrottled = await node.StatsAsync("busy");
        proxy.StopThrottling();
        var after = await node.IngestOkAsync("busy", """{"n":2}""", new Dictionary<string, string> { ["Idempotency-Key"] = "second" });
        await downstream.WaitUntilAsync(d => d.CallsTo("/busy").Count == 2, TimeSpan.FromSeconds(20), "both acknowledged messages");

        Assert.Equal(2, sendsForTheFirst);
        Assert.Equal(2, sendsForTheSecond);
        Assert.Contains("SQS", problem.GetProperty("detail").GetString());
        Assert.NotNull(retryAfter);
        Assert.Equal(1, statsWhileThrottled.Ingested);
        Assert.Equal(new HashSet<string> { ridden, after }, downstream.CallsTo("/busy").Select(c => c.MessageId!).ToHashSet());
    }

    [Fact]
    public async Task KillDuringIngestAndDelivery_ThenRestart_DeliversEveryAcknowledgedMessage()
    {
        using var directory = new TempDirectory();
        var database = directory.File("clusterqueue.db");
        await using var downstream = await Downstream.StartAsync();
        downstream.Reply = _ => new DownstreamReply(200, Delay: TimeSpan.FromMilliseconds(30));
        var settings = SqsNode.ProcessSettings(emulator.Endpoint, SqsNode.UniquePrefix());
        settings["ClusterQueue:Processing:LeaseDuration"] = "00:00:02";
        var acknowledged = new ConcurrentDictionary<string, DateTimeOffset>();

        await using (var node = await NodeProcess.StartAsync(database, settings))
        {
            using var put = await node.Client.PutAsJsonAsync("/v1/groups/crash", GroupDefinitions.Forwarding(downstream, "/crash", rate: 100, burst: 10, concurrency: 4));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            using var stop = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 4).Select(sender => node.SendUntilStoppedAsync("crash", $"sender {sender}", acknowledged, stop.Token)).ToArray();
            await Eventually.TrueAsync(() => acknowledged.Count >= 300 && downstream.CallsTo("/crash").Count > 0, "acknowledged messages and deliveries under way", TimeSpan.FromSeconds(60));

            await node.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        await using var restarted = await NodeProcess.StartAsync(database, settings);
        await Eventually.TrueAsync(
            () => acknowledged.Keys.All(downstream.CallsTo("/crash").Select(c => c.MessageId).ToHashSet().Contains),
            "every acknowledged message delivered after the restart",
            TimeSpan.FromSeconds(90));

        Assert.True(acknowledged.Count >= 300, $"Only {acknowledged.Count} messages were acknowledged.");
        var stats = await Eventually.ReadAsync(
            async () => (await restarted.Client.GetFromJsonAsync<GroupStats>("/v1/groups/crash/stats"))!,
            s => s.Queued + s.InFlight == 0,
            "the queue to drain",
            TimeSpan.FromSeconds(30));
        Assert.True(stats.Delivered >= acknowledged.Count, $"delivered {stats.Delivered} < acknowledged {acknowledged.Count}");
    }
}
