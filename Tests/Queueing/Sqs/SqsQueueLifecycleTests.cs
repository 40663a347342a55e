using System.Text;
using Amazon.Runtime;
using Amazon.SQS.Model;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// What only the SQS queue has: a queue per group that follows the group's life, bodies that SQS cannot carry as
/// they are, the payload store for large ones, and ingest that takes back its reservation when SQS refuses.
/// </summary>
public sealed class SqsQueueLifecycleTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>, IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly SqsQueueRig _rig = new(emulator);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task DefineGroup_CreatesItsQueueWithAVisibilityTimeoutWellAboveTheHandlerTimeout()
    {
        _rig.Start(_time);

        await _rig.DefineGroupAsync("orders", handlerTimeoutSeconds: 45);
        await _rig.DefineGroupAsync("quick", handlerTimeoutSeconds: 5);

        var orders = await _rig.Client.AttributeAsync(await _rig.Client.QueueUrlAsync(_rig.Options.QueuePrefix + "orders"), "VisibilityTimeout");
        var quick = await _rig.Client.AttributeAsync(await _rig.Client.QueueUrlAsync(_rig.Options.QueuePrefix + "quick"), "VisibilityTimeout");
        Assert.Equal("90", orders);
        Assert.Equal("60", quick);
    }

    [Fact]
    public async Task RedefineGroup_WithALongerHandlerTimeout_RaisesItsQueuesVisibilityTimeout()
    {
        _rig.Start(_time);
        await _rig.DefineGroupAsync("orders", handlerTimeoutSeconds: 30);

        await _rig.DefineGroupAsync("orders", handlerTimeoutSeconds: 600);

        var url = await _rig.Client.QueueUrlAsync(_rig.QueueName("orders"));
        Assert.Equal("1200", await _rig.Client.AttributeAsync(url, "VisibilityTimeout"));
    }

    [Fact]
    public async Task GroupWithAnIdSqsCannotName_GetsAHashedQueueThatARestartedNodeFindsAgain()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("shop.orders.eu");
        await queue.EnqueueAsync(new NewMessage("m-1", "shop.orders.eu", "text/plain", "hi"u8.ToArray(), null, default), None);

        var restarted = _rig.Reopen();
        var message = Assert.Single((await restarted.LeaseAsync("shop.orders.eu", 10, Lease, None)).Messages);

        Assert.Matches("^t[0-9a-f]{11}-shop_orders_eu-[0-9a-f]{16}$", _rig.QueueName("shop.orders.eu"));
        Assert.Equal("m-1", message.Id);
        Assert.Equal("hi"u8.ToArray(), message.Body);
    }

    [Fact]
    public async Task RemoveGroup_DeletesItsQueueAndItsOffloadedPayloads()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        await queue.EnqueueAsync(new NewMessage("big", "orders", null, RandomBytes(300 * 1024), null, default), None);
        Assert.NotNull(await _rig.Payloads.GetAsync("orders", "big", None));

        await queue.RemoveGroupAsync("orders", None);

        await Assert.ThrowsAsync<QueueDoesNotExistException>(() => _rig.Client.QueueUrlAsync(_rig.QueueName("orders")));
        Assert.Null(await _rig.Payloads.GetAsync("orders", "big", None));
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Recover_RecreatesAQueueDeletedBehindItsBackAndWakesGroupsWithMessagesInSqs()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("lost");
        await _rig.DefineGroupAsync("busy");
        await _rig.DefineGroupAsync("idle");
        await _rig.Client.DeleteQueueAsync(await _rig.Client.QueueUrlAsync(_rig.QueueName("lost")));

        // A message in SQS with no record in the store: a node died between SQS accepting it and recording it.
        var busyUrl = await _rig.Client.QueueUrlAsync(_rig.QueueName("busy"));
        await _rig.Client.SendAsync(busyUrl, SqsEnvelope.Encode("orphan", _time.GetUtcNow(), null, "x"u8.ToArray(), 0, offloaded: false));

        var restarted = _rig.Reopen();
        var groups = await restarted.RecoverAsync([Settings("lost"), Settings("busy"), Settings("idle")], None);

        Assert.Equal(["busy"], groups);
        Assert.False(string.IsNullOrEmpty(await _rig.Client.QueueUrlAsync(_rig.QueueName("lost"))));
        Assert.Equal("orphan", Assert.Single((await restarted.LeaseAsync("busy", 10, Lease, None)).Messages).Id);
    }

    [Fact]
    public async Task LargeBody_GoesThroughThePayloadStoreIntactAndLeavesItWhenDelivered()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var body = RandomBytes(300 * 1024);

        await queue.EnqueueAsync(new NewMessage("big", "orders", "application/octet-stream", body, null, default), None);
        var stored = await _rig.Payloads.GetAsync("orders", "big", None);
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.CompleteAsync(message, None));

        Assert.Equal(body, stored);
        Assert.Equal(body, message.Body);
        Assert.Equal("application/octet-stream", message.ContentType);
        Assert.Null(await _rig.Payloads.GetAsync("orders", "big", None));
        Assert.Equal("delivered", (await queue.GetStatusAsync("big", None))!.State);
    }

    [Fact]
    public async Task LargeBody_DeadLetteredThenRedriven_ComesBackIntactFromThePayloadStore()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var body = RandomBytes(300 * 1024);
        await queue.EnqueueAsync(new NewMessage("big", "orders", null, body, null, default), None);
        Assert.True(await queue.DeadLetterAsync(Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages), "bad", None));
        var letter = Assert.Single((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters);

        var redriven = await queue.RedriveAsync("orders", DeadLetterSelection.All, None);
        var again = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Equal(1, redriven);
        Assert.Equal(body, again.Body);
        Assert.Equal(1, again.Attempt);
        Assert.Equal(300 * 1024, letter.SizeBytes);
        Assert.NotNull(await _rig.Payloads.GetAsync("orders", "big", None));
    }

    [Fact]
    public async Task LargeBody_DeadLetterPurgedOrExpired_LeavesThePayloadStore()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        await queue.EnqueueAsync(new NewMessage("purged", "orders", null, RandomBytes(300 * 1024), null, default), None);
        await queue.EnqueueAsync(new NewMessage("expired", "orders", null, RandomBytes(300 * 1024), null, default), None);
        foreach (var message in (await queue.LeaseAsync("orders", 10, Lease, None)).Messages)
        {
            Assert.True(await queue.DeadLetterAsync(message, "bad", None));
        }

        var purged = await queue.PurgeDeadLettersAsync("orders", DeadLetterSelection.Named(["purged"]), None);
        var expiredKept = await _rig.Payloads.GetAsync("orders", "expired", None);

        // The retention sweep passes no group: every group's dead letters older than the cut.
        _time.Advance(TimeSpan.FromMinutes(1));
        var expired = await queue.PurgeDeadLettersAsync(null, new DeadLetterSelection(DeadBefore: _time.GetUtcNow()), None);

        Assert.Equal(1, purged);
        Assert.NotNull(expiredKept);
        Assert.Equal(1, expired);
        Assert.Null(await _rig.Payloads.GetAsync("orders", "purged", None));
        Assert.Null(await _rig.Payloads.GetAsync("orders", "expired", None));
        Assert.Null(await queue.GetStatusAsync("purged", None));
        Assert.Null(await queue.GetStatusAsync("expired", None));
        Assert.Equal(0, (await queue.GetCountsAsync("orders", None))!.Dead);
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xfe, 0x00, 0x01, 0x80 })]
    [InlineData(new byte[] { 0x61, 0x00, 0x62 })]
    [InlineData(new byte[] { 0xef, 0xbf, 0xbe })]
    public async Task BodyThatIsNotSqsText_IsCarriedAsBase64AndComesBackByteForByte(byte[] body)
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");

        await queue.EnqueueAsync(new NewMessage("m-1", "orders", null, body, null, default), None);

        Assert.Equal(body, Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Body);
    }

    [Fact]
    public async Task TextBody_WithNewlinesAndAstralCharacters_ComesBackByteForByte()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var body = Encoding.UTF8.GetBytes("{\"note\":\"line one\r\nline two\ttab 🚀 ünïcödé\"}");

        await queue.EnqueueAsync(new NewMessage("m-1", "orders", "application/json", body, null, default), None);

        Assert.Equal(body, Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Body);
    }

    [Fact]
    public async Task Enqueue_WhenSqsIsUnreachable_ThrowsUnavailableAndKeepsNothing()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var down = new SqsOptions
        {
            ServiceUrl = $"http://127.0.0.1:{LoopbackServer.FreePort()}/",
            QueuePrefix = _rig.Options.QueuePrefix,
            MaxAttempts = 2,
        };
        using var unreachable = SqsSetup.CreateClient(down, new BasicAWSCredentials("test", "test"));
        var cutOff = _rig.Reopen(down, unreachable);
        var expires = _time.GetUtcNow() + TimeSpan.FromHours(1);

        await Assert.ThrowsAsync<QueueUnavailableException>(() => cutOff.EnqueueAsync(new NewMessage("m-1", "orders", null, "x"u8.ToArray(), "delivery-1", expires), None));

        Assert.Null(await queue.GetStatusAsync("m-1", None));
        Assert.Equal(0, (await queue.GetCountsAsync("orders", None))!.Ingested);

        // The sender's retry, once SQS answers again, is a new message, not a duplicate of the refused one.
        var retried = await queue.EnqueueAsync(new NewMessage("m-2", "orders", null, "x"u8.ToArray(), "delivery-1", expires), None);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-2"), retried);
        Assert.Equal("m-2", Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Id);
    }

    [Fact]
    public async Task Enqueue_WhileAnEarlierRequestWithTheSameDeliveryIdIsStillSending_IsBusyUntilThatOneIsTakenToHaveDied()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var records = new MessageRecords(_rig.Database, _time);
        var expires = _time.GetUtcNow() + TimeSpan.FromHours(1);

        // The first request reserved its record and then its node died before SQS answered.
        await records.InsertAsync(new NewMessage("m-1", "orders", null, [], "delivery-1", expires), MessageRecords.StateAccepting, DateTimeOffset.MinValue, None);
        var meanwhile = await queue.EnqueueAsync(new NewMessage("m-2", "orders", null, "x"u8.ToArray(), "delivery-1", expires), None);
        _time.Advance(TimeSpan.FromMinutes(5));
        var later = await queue.EnqueueAsync(new NewMessage("m-3", "orders", null, "x"u8.ToArray(), "delivery-1", expires), None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Busy, "m-1"), meanwhile);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-3"), later);
        Assert.Null(await queue.GetStatusAsync("m-1", None));
        Assert.Equal(1, (await queue.GetCountsAsync("orders", None))!.Ingested);
        Assert.Equal("m-3", Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Id);
    }

    [Fact]
    public async Task ForeignMessageInTheQueue_IsDeadLetteredInsteadOfBlockingTheGroup()
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("orders");
        var url = await _rig.Client.QueueUrlAsync(_rig.QueueName("orders"));
        var sent = await _rig.Client.SendMessageAsync(url, "hand-made");

        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Empty(batch.Messages);
        var letter = Assert.Single((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters);
        Assert.Equal(sent.MessageId, letter.MessageId);
        Assert.Contains("not a ClusterQueue message", letter.LastError);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _rig.DisposeAsync().AsTask();

    private static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    private static Node.Groups.GroupSettings Settings(string id)
    {
        var now = DateTimeOffset.UnixEpoch;
        return Node.Groups.GroupSettings.FromValidDefinition(id, new Contracts.GroupDefinition
        {
            RatePerSecond = 1,
            Burst = 1,
            MaxConcurrency = 1,
            Target = new Contracts.TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        }, now, now);
    }
}
