using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing;

/// <summary>
/// What the SQL queues promise beyond <see cref="MessageQueueContractTests"/>: oldest-first leases, visibility to the
/// millisecond, when the next hidden message shows, and receipts that fence every stale change. SQS promises none of
/// these (see docs/design.md), so only the store queues run them.
/// </summary>
public abstract class SqlMessageQueueContractTests : MessageQueueContractTests
{
    /// <summary>Defines a group straight in the store, as the registry would, so the queue accepts its messages.</summary>
    protected static async Task DefineInStoreAsync(SqlDatabase? database, TimeProvider? time, string groupId)
    {
        var store = database ?? throw new InvalidOperationException("Create the queue before defining groups.");
        var definition = new GroupDefinition
        {
            RatePerSecond = 100,
            Burst = 100,
            MaxConcurrency = 10,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        };
        var now = time!.GetUtcNow();
        await new GroupStore(store, time).UpsertAsync(GroupSettings.FromValidDefinition(groupId, definition, now, now), CancellationToken.None);
    }

    [Fact]
    public async Task AttemptHistory_OfAMessageFailingMoreThanAHundredTimes_KeepsTheNewestHundred()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");

        for (var attempt = 1; attempt <= 150; attempt++)
        {
            var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
            var report = new AttemptReport(time.GetUtcNow(), TimeSpan.FromMilliseconds(attempt), 500);
            Assert.True(attempt < 150
                ? await queue.RetryAsync(message, time.GetUtcNow(), $"failure {attempt}", RetryKind.Failed, None, report)
                : await queue.DeadLetterAsync(message, $"failure {attempt}", None, report));
        }

        var history = (await queue.GetStatusAsync(id, None))!.AttemptHistory!;

        Assert.Equal(Enumerable.Range(51, 100), history.Select(a => a.Attempt));
        Assert.Equal("dead", history[^1].Outcome);
        Assert.Equal(100, AttemptHistoryRows());
    }

    [Fact]
    public async Task Lease_WhileLeased_HidesMessageUntilLeaseExpiresThenReturnsItWithAttemptTwo()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(Lease - Millisecond);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(Millisecond);
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Equal(id, second.Id);
        Assert.Equal(1, first.Attempt);
        Assert.Equal(2, second.Attempt);
        Assert.NotEqual(first.Receipt, second.Receipt);
    }

    [Fact]
    public async Task Lease_ReturnsOldestEnqueuedFirst()
    {
        var (queue, time) = await StartAsync("orders");
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await EnqueueAsync(queue, "orders"));
            time.Advance(Millisecond);
        }

        var leased = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            leased.Add(Assert.Single((await queue.LeaseAsync("orders", 1, Lease, None)).Messages).Id);
        }

        Assert.Equal(ids, leased);
    }

    [Fact]
    public async Task Lease_MessagesEnqueuedAtTheSameInstant_ComeInEnqueueOrder()
    {
        var (queue, _) = await StartAsync("orders");
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add(await EnqueueAsync(queue, "orders"));
        }

        var leased = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            leased.Add(Assert.Single((await queue.LeaseAsync("orders", 1, Lease, None)).Messages).Id);
        }

        Assert.Equal(ids, leased);
    }

    [Fact]
    public async Task Lease_MessageRetriedForLater_ComesAfterMessagesVisibleBeforeIt()
    {
        var (queue, time) = await StartAsync("orders");
        var first = await EnqueueAsync(queue, "orders");
        time.Advance(Millisecond);
        var second = await EnqueueAsync(queue, "orders");
        var leased = Assert.Single((await queue.LeaseAsync("orders", 1, Lease, None)).Messages);
        Assert.Equal(first, leased.Id);
        await queue.RetryAsync(leased, time.GetUtcNow() + TimeSpan.FromSeconds(5), "busy", RetryKind.Failed, None);
        time.Advance(Millisecond);
        var third = await EnqueueAsync(queue, "orders");
        time.Advance(TimeSpan.FromSeconds(10));

        var order = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            order.Add(Assert.Single((await queue.LeaseAsync("orders", 1, Lease, None)).Messages).Id);
        }

        Assert.Equal([second, third, first], order);
    }

    [Fact]
    public async Task Lease_WithRetryPending_ReportsWhenItBecomesVisible()
    {
        var (queue, time) = await StartAsync("orders");
        await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var retryAt = time.GetUtcNow() + TimeSpan.FromSeconds(7);
        Assert.True(await queue.RetryAsync(message, retryAt, "downstream 503", RetryKind.Failed, None));

        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Empty(batch.Messages);
        Assert.Equal(retryAt, batch.NextVisibleAt);
    }

    [Fact]
    public async Task Complete_WithStaleReceiptAfterReLease_ReturnsFalseAndLeavesTheNewLease()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var stale = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(Lease);
        var current = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        var completed = await queue.CompleteAsync(stale, None);

        Assert.False(completed);
        Assert.NotEqual("delivered", (await queue.GetStatusAsync(id, None))!.State);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.CompleteAsync(current, None));
        Assert.Equal("delivered", (await queue.GetStatusAsync(id, None))!.State);
    }

    [Fact]
    public async Task EveryChange_WithStaleReceipt_ReturnsFalseAndLeavesTheNewLease()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var stale = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(Lease);
        var current = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var leaseEnd = time.GetUtcNow() + Lease;

        Assert.False(await queue.ExtendAsync(stale, TimeSpan.FromHours(1), None), "extend");
        Assert.False(await queue.RetryAsync(stale, time.GetUtcNow(), "stale", RetryKind.Failed, None), "retry failed");
        Assert.False(await queue.RetryAsync(stale, time.GetUtcNow(), "stale", RetryKind.Throttled, None), "retry throttled");
        Assert.False(await queue.ReleaseAsync(stale, None), "release");
        Assert.False(await queue.DeadLetterAsync(stale, "stale", None), "dead-letter");
        Assert.False(await queue.CompleteAsync(stale, None), "complete");

        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.Empty((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters);
        time.Advance(leaseEnd - time.GetUtcNow() - Millisecond);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var counts = await queue.GetCountsAsync("orders", None);
        Assert.Equal(new QueueCounts(Queued: 0, Dead: 0, Ingested: 1, Delivered: 0, Failed: 0, DeadLettered: 0, Throttled: 0), counts! with { Queued = 0 });
        Assert.True(await queue.CompleteAsync(current, None));
        Assert.Equal("delivered", (await queue.GetStatusAsync(id, None))!.State);
    }

    [Fact]
    public async Task Extend_BeforeExpiry_KeepsMessageInvisiblePastTheOriginalExpiry()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(TimeSpan.FromSeconds(20));

        var extended = await queue.ExtendAsync(message, Lease, None);
        time.Advance(Lease - Millisecond);
        var beforeNewExpiry = await queue.LeaseAsync("orders", 10, Lease, None);
        time.Advance(Millisecond);
        var afterNewExpiry = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.True(extended);
        Assert.Empty(beforeNewExpiry.Messages);
        var again = Assert.Single(afterNewExpiry.Messages);
        Assert.Equal(id, again.Id);
        Assert.Equal(2, again.Attempt);
    }

    [Fact]
    public async Task Retry_AtTime_MakesMessageVisibleOnlyFromThenWithTheAttemptCounted()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var retryAt = time.GetUtcNow() + TimeSpan.FromSeconds(10);

        var retried = await queue.RetryAsync(message, retryAt, "downstream 500", RetryKind.Failed, None);
        var status = await queue.GetStatusAsync(id, None);
        time.Advance(TimeSpan.FromSeconds(10) - Millisecond);
        var early = await queue.LeaseAsync("orders", 10, Lease, None);
        time.Advance(Millisecond);
        var onTime = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.True(retried);
        Assert.NotNull(status);
        Assert.Equal("queued", status.State);
        Assert.Equal(1, status.Attempts);
        Assert.Equal("downstream 500", status.LastError);
        Assert.Equal(retryAt, status.VisibleAt);
        Assert.Empty(early.Messages);
        var again = Assert.Single(onTime.Messages);
        Assert.Equal(id, again.Id);
        Assert.Equal(2, again.Attempt);
    }
}
