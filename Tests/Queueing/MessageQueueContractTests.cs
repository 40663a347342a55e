using System.Collections.Concurrent;
using System.Text;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing;

/// <summary>
/// The behaviour every <see cref="IMessageQueue"/> backend must have: the store queue and the SQS queue alike. A
/// backend's test class inherits this and supplies the hooks; the tests use nothing but the interface and a fake
/// clock, so a backend passes or fails them on its own behaviour. Orders and expiries are asserted as sets and with
/// whole seconds to spare, because SQS promises neither order nor millisecond timing; the SQL queues' stricter
/// promises are in <see cref="SqlMessageQueueContractTests"/>.
/// </summary>
public abstract class MessageQueueContractTests
{
    /// <summary>Long enough never to run out during a test, even against a real server on a slow machine.</summary>
    protected static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>For the tests that watch a lease run out: SQS counts whole seconds, so two.</summary>
    protected static readonly TimeSpan ShortLease = TimeSpan.FromSeconds(2);

    protected static readonly TimeSpan Millisecond = TimeSpan.FromMilliseconds(1);
    protected static readonly CancellationToken None = CancellationToken.None;

    private int _nextId;

    /// <summary>A new, empty queue on storage of its own, whose time comes from <paramref name="time"/>. Called once per test, first.</summary>
    protected abstract Task<IMessageQueue> CreateQueueAsync(FakeTimeProvider time);

    /// <summary>Defines a group on the queue created by this test, so that the queue accepts the group's messages.</summary>
    protected abstract Task DefineGroupAsync(string groupId);

    /// <summary>How many attempt-history rows the store under the queue holds, over all messages: none may outlive its message.</summary>
    protected abstract long AttemptHistoryRows();

    protected static long CountAttemptRows(ClusterQueue.Node.Storage.SqlDatabase? database)
    {
        using var connection = (database ?? throw new InvalidOperationException("Create the queue first.")).OpenRead();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM message_attempts;";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Lets <paramref name="span"/> pass for the queue's visibility timers: the fake clock for a queue that reads it, and
    /// real time as well (with a margin) for one whose server keeps its own clock.
    /// </summary>
    protected virtual Task LetTimePassAsync(FakeTimeProvider time, TimeSpan span)
    {
        time.Advance(span);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Lease_WhileLeased_HidesMessageUntilTheLeaseRunsOutThenReturnsItWithAttemptTwo()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, ShortLease, None)).Messages);

        var whileLeased = await queue.LeaseAsync("orders", 10, ShortLease, None);
        await LetTimePassAsync(time, ShortLease);
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Empty(whileLeased.Messages);
        Assert.Equal(id, second.Id);
        Assert.Equal(1, first.Attempt);
        Assert.Equal(2, second.Attempt);
        Assert.NotEqual(first.Receipt, second.Receipt);
    }

    [Fact]
    public async Task Extend_BeforeTheLeaseRunsOut_KeepsMessageHiddenPastTheFirstExpiry()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, ShortLease, None)).Messages);
        await LetTimePassAsync(time, ShortLease / 2);

        var extended = await queue.ExtendAsync(message, ShortLease * 2, None);
        await LetTimePassAsync(time, ShortLease);
        var pastFirstExpiry = await queue.LeaseAsync("orders", 10, Lease, None);
        await LetTimePassAsync(time, ShortLease);
        var pastExtension = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.True(extended);
        Assert.Empty(pastFirstExpiry.Messages);
        var again = Assert.Single(pastExtension.Messages);
        Assert.Equal(id, again.Id);
        Assert.Equal(2, again.Attempt);
    }

    [Fact]
    public async Task Retry_Later_HidesMessageUntilThenAndRecordsTheAttempt()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var retryAt = time.GetUtcNow() + ShortLease;

        var retried = await queue.RetryAsync(message, retryAt, "downstream 500", RetryKind.Failed, None);
        var status = await queue.GetStatusAsync(id, None);
        var early = await queue.LeaseAsync("orders", 10, Lease, None);
        await LetTimePassAsync(time, ShortLease);
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

    [Fact]
    public async Task Lease_AfterEnqueue_ReturnsMessageWithFirstAttemptAndSameBodyAndContentType()
    {
        var (queue, time) = await StartAsync("orders");
        var body = Encoding.UTF8.GetBytes("""{"order":42}""");
        var result = await queue.EnqueueAsync(new NewMessage("m-1", "orders", "application/json", body, null, default), None);

        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-1"), result);
        var message = Assert.Single(batch.Messages);
        Assert.Equal("m-1", message.Id);
        Assert.Equal("orders", message.GroupId);
        Assert.Equal(1, message.Attempt);
        Assert.Equal("application/json", message.ContentType);
        Assert.Equal(body, message.Body);
        Assert.Equal(time.GetUtcNow(), message.CreatedAt);
        Assert.False(string.IsNullOrEmpty(message.Receipt));
    }

    [Fact]
    public async Task Lease_AfterEnqueueWithoutContentTypeOrBody_ReturnsThemEmpty()
    {
        var (queue, _) = await StartAsync("orders");
        await queue.EnqueueAsync(new NewMessage("m-1", "orders", null, [], null, default), None);

        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Null(message.ContentType);
        Assert.Empty(message.Body);
    }

    [Fact]
    public async Task GetStatus_AfterEnqueue_IsQueuedWithNoAttempts()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");

        var status = await queue.GetStatusAsync(id, None);

        Assert.NotNull(status);
        Assert.Equal(id, status.MessageId);
        Assert.Equal("orders", status.GroupId);
        Assert.Equal("queued", status.State);
        Assert.Equal(0, status.Attempts);
        Assert.Equal(time.GetUtcNow(), status.CreatedAt);
        Assert.Null(status.CompletedAt);
        Assert.Null(await queue.GetStatusAsync("no-such-message", None));
    }

    [Fact]
    public async Task Lease_WithMax_ReturnsAtMostMaxAndEachMessageOnce()
    {
        var (queue, _) = await StartAsync("orders");
        var ids = await EnqueueManyAsync(queue, "orders", 7);

        var first = await queue.LeaseAsync("orders", 3, Lease, None);
        var second = await queue.LeaseAsync("orders", 3, Lease, None);
        var third = await queue.LeaseAsync("orders", 3, Lease, None);
        var fourth = await queue.LeaseAsync("orders", 3, Lease, None);

        Assert.Equal(3, first.Messages.Count);
        Assert.Equal(3, second.Messages.Count);
        Assert.Single(third.Messages);
        Assert.Empty(fourth.Messages);
        var leased = first.Messages.Concat(second.Messages).Concat(third.Messages).Select(m => m.Id).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), leased.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Lease_OneGroup_NeverReturnsAnotherGroupsMessages()
    {
        var (queue, _) = await StartAsync("a", "b");
        var backlog = await EnqueueManyAsync(queue, "a", 50);
        var few = await EnqueueManyAsync(queue, "b", 3);

        var fromB = await LeaseAllAsync(queue, "b");
        var fromA = await LeaseAllAsync(queue, "a");

        Assert.Equal(few.Order(StringComparer.Ordinal), fromB.Keys.Order(StringComparer.Ordinal));
        Assert.All(fromB.Values, m => Assert.Equal("b", m.GroupId));
        Assert.Equal(backlog.Order(StringComparer.Ordinal), fromA.Keys.Order(StringComparer.Ordinal));
        Assert.All(fromA.Values, m => Assert.Equal("a", m.GroupId));
    }

    [Fact]
    public async Task Lease_GroupWithoutMessages_ReturnsNothingWhileAnotherGroupHasABacklog()
    {
        var (queue, _) = await StartAsync("a", "b");
        await EnqueueManyAsync(queue, "a", 50);

        var batch = await queue.LeaseAsync("b", 100, Lease, None);

        Assert.Empty(batch.Messages);
        Assert.Null(batch.NextVisibleAt);
    }

    [Fact]
    public async Task Lease_OnEmptyGroup_ReturnsNoMessagesAndNoNextVisibleAt()
    {
        var (queue, _) = await StartAsync("orders");

        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Empty(batch.Messages);
        Assert.Null(batch.NextVisibleAt);
    }

    [Fact]
    public async Task Lease_AfterEveryMessageCompleted_ReportsNoNextVisibleAt()
    {
        var (queue, _) = await StartAsync("orders");
        await EnqueueManyAsync(queue, "orders", 2);
        foreach (var message in (await queue.LeaseAsync("orders", 10, Lease, None)).Messages)
        {
            Assert.True(await queue.CompleteAsync(message, None));
        }

        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Empty(batch.Messages);
        Assert.Null(batch.NextVisibleAt);
    }

    [Fact]
    public async Task Complete_LeasedMessage_IsNeverLeasedAgainAndReportsDelivered()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        time.Advance(TimeSpan.FromSeconds(1));
        var completedAt = time.GetUtcNow();

        var completed = await queue.CompleteAsync(message, None);
        time.Advance(Lease * 3);

        Assert.True(completed);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var status = await queue.GetStatusAsync(id, None);
        Assert.NotNull(status);
        Assert.Equal("delivered", status.State);
        Assert.Equal(1, status.Attempts);
        Assert.Equal(completedAt, status.CompletedAt);
    }

    [Fact]
    public async Task Complete_Twice_ReturnsFalseTheSecondTime()
    {
        var (queue, _) = await StartAsync("orders");
        await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.True(await queue.CompleteAsync(message, None));
        Assert.False(await queue.CompleteAsync(message, None));
    }

    [Fact]
    public async Task Extend_ThenComplete_UsesTheSameReceipt()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        for (var i = 0; i < 5; i++)
        {
            time.Advance(Lease / 2);
            Assert.True(await queue.ExtendAsync(message, Lease, None), $"extension {i + 1}");
        }

        Assert.True(await queue.CompleteAsync(message, None));
        Assert.Equal("delivered", (await queue.GetStatusAsync(id, None))!.State);
    }

    [Fact]
    public async Task Retry_Throttled_DoesNotCountTheAttempt()
    {
        var (queue, time) = await StartAsync("orders");
        await EnqueueAsync(queue, "orders");
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.True(await queue.RetryAsync(first, time.GetUtcNow() + TimeSpan.FromSeconds(1), "429", RetryKind.Throttled, None));
        await LetTimePassAsync(time, TimeSpan.FromSeconds(1));
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(second, time.GetUtcNow(), "500", RetryKind.Failed, None));
        var third = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.Equal(1, first.Attempt);
        Assert.Equal(1, second.Attempt);
        Assert.Equal(2, third.Attempt);
    }

    [Fact]
    public async Task Throttles_InARow_AreKeptOnTheMessage_CountedOnesSpendAttempts_AndAFailureEndsTheRun()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var leased = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var seen = new List<(int Throttles, int Attempt)> { (leased.Throttles, leased.Attempt) };

        RetryKind[] kinds = [RetryKind.Throttled, RetryKind.Throttled, RetryKind.ThrottledCounted, RetryKind.ThrottledCounted, RetryKind.Failed, RetryKind.Throttled];
        foreach (var kind in kinds)
        {
            var report = new AttemptReport(time.GetUtcNow(), TimeSpan.FromMilliseconds(3), kind == RetryKind.Failed ? 500 : 429);
            Assert.True(await queue.RetryAsync(leased, time.GetUtcNow(), $"HTTP {report.Status}", kind, None, report));
            leased = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
            seen.Add((leased.Throttles, leased.Attempt));
        }

        Assert.Equal([(0, 1), (1, 1), (2, 1), (3, 2), (4, 3), (0, 4), (1, 4)], seen);
        var history = (await queue.GetStatusAsync(id, None))!.AttemptHistory!;
        Assert.Equal(["throttled", "throttled", "failed", "failed", "failed", "throttled"], history.Select(a => a.Outcome));
        Assert.Equal([1, 1, 1, 2, 3, 4], history.Select(a => a.Attempt));
        var counts = (await queue.GetCountsAsync("orders", None))!;
        Assert.Equal((5L, 3L), (counts.Throttled, counts.Failed));
    }

    [Fact]
    public async Task Throttles_InARow_SurviveARelease_AndStartAgainAtTheNextStepAndAfterARedrive()
    {
        var (queue, time) = await StartAsync("jobs");
        await EnqueueAsync(queue, "jobs");
        var first = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(first, time.GetUtcNow(), "HTTP 429", RetryKind.Throttled, None));
        var throttled = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.ReleaseAsync(throttled, None));
        var released = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);

        Assert.True(await queue.ContinueAsync(released, "c1", 202, None));
        var nextStep = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(nextStep, time.GetUtcNow(), "HTTP 503", RetryKind.Throttled, None));
        var throttledAgain = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.DeadLetterAsync(throttledAgain, "HTTP 400", None));
        Assert.Equal(1, await queue.RedriveAsync("jobs", DeadLetterSelection.All, None));
        var redriven = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);

        Assert.Equal([0, 1, 1, 0, 1, 0], new[] { first, throttled, released, nextStep, throttledAgain, redriven }.Select(m => m.Throttles));
        Assert.Equal((2, 2), (nextStep.Step, redriven.Step));
    }

    [Fact]
    public async Task Release_LeasedMessage_MakesItVisibleNowWithoutCountingTheAttempt()
    {
        var (queue, _) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        var released = await queue.ReleaseAsync(first, None);
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        Assert.True(released);
        Assert.Equal(id, second.Id);
        Assert.Equal(1, second.Attempt);
    }

    [Fact]
    public async Task DeadLetter_LeasedMessage_IsListedWithAttemptsAndLastErrorAndNeverLeased()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders", "hello"u8.ToArray());
        var createdAt = time.GetUtcNow();
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        await queue.RetryAsync(first, time.GetUtcNow(), "timeout", RetryKind.Failed, None);
        time.Advance(TimeSpan.FromSeconds(3));
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);

        var deadLettered = await queue.DeadLetterAsync(second, "HTTP 500 from downstream", None);
        time.Advance(Lease * 2);

        Assert.True(deadLettered);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        var list = await queue.ListDeadLettersAsync("orders", null, 10, None);
        var letter = Assert.Single(list.DeadLetters);
        Assert.Null(list.NextAfter);
        Assert.Equal(id, letter.MessageId);
        Assert.Equal("orders", letter.GroupId);
        Assert.Equal(2, letter.Attempts);
        Assert.Equal("HTTP 500 from downstream", letter.LastError);
        Assert.Equal(createdAt, letter.CreatedAt);
        Assert.Equal(createdAt + TimeSpan.FromSeconds(3), letter.DeadAt);
        Assert.Equal("text/plain", letter.ContentType);
        Assert.Equal(5, letter.SizeBytes);
        var status = await queue.GetStatusAsync(id, None);
        Assert.NotNull(status);
        Assert.Equal("dead", status.State);
        Assert.Equal(2, status.Attempts);
        Assert.Equal("HTTP 500 from downstream", status.LastError);
    }

    [Fact]
    public async Task ListDeadLetters_OfOneGroup_OmitsOtherGroupsDeadLetters()
    {
        var (queue, _) = await StartAsync("a", "b");
        await EnqueueAsync(queue, "a");
        await EnqueueAsync(queue, "b");
        await DeadLetterAllAsync(queue, "a");

        Assert.Single((await queue.ListDeadLettersAsync("a", null, 10, None)).DeadLetters);
        Assert.Empty((await queue.ListDeadLettersAsync("b", null, 10, None)).DeadLetters);
    }

    [Fact]
    public async Task ListDeadLetters_WithAfter_PagesOldestFirstWithoutGapsOrRepeats()
    {
        var (queue, time) = await StartAsync("orders");
        var ids = await EnqueueManyAsync(queue, "orders", 7);
        var dead = new List<string>();

        // Some die at the same instant, so ties must page cleanly too.
        foreach (var message in (await queue.LeaseAsync("orders", 10, Lease, None)).Messages)
        {
            Assert.True(await queue.DeadLetterAsync(message, "bad", None));
            dead.Add(message.Id);
            if (dead.Count % 3 == 0)
            {
                time.Advance(TimeSpan.FromSeconds(1));
            }
        }

        var pages = new List<IReadOnlyList<string>>();
        string? after = null;
        do
        {
            var page = await queue.ListDeadLettersAsync("orders", after, 2, None);
            pages.Add(page.DeadLetters.Select(d => d.MessageId).ToList());
            after = page.NextAfter;
            Assert.True(pages.Count <= 10, "paging does not end");
        }
        while (after is not null);

        Assert.Equal([2, 2, 2, 1], pages.Select(p => p.Count));
        var listed = pages.SelectMany(p => p).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.Equal(listed.Count, listed.Distinct().Count());
        Assert.Equal(dead.Take(3).Order(StringComparer.Ordinal), listed.Take(3).Order(StringComparer.Ordinal));
        Assert.Equal(dead.Skip(6).Single(), listed[6]);
    }

    [Fact]
    public async Task ListDeadLetters_WithLimitEqualToCount_HasNoNextPage()
    {
        var (queue, _) = await StartAsync("orders");
        await EnqueueManyAsync(queue, "orders", 3);
        await DeadLetterAllAsync(queue, "orders");

        var page = await queue.ListDeadLettersAsync("orders", null, 3, None);

        Assert.Equal(3, page.DeadLetters.Count);
        Assert.Null(page.NextAfter);
    }

    [Fact]
    public async Task Redrive_All_BringsEveryDeadLetterBackWithAttemptsReset()
    {
        var (queue, time) = await StartAsync("orders", "other");
        var ids = await EnqueueManyAsync(queue, "orders", 3);
        var otherId = await EnqueueAsync(queue, "other");
        foreach (var message in (await queue.LeaseAsync("orders", 10, Lease, None)).Messages)
        {
            await queue.RetryAsync(message, time.GetUtcNow(), "first failure", RetryKind.Failed, None);
        }

        await DeadLetterAllAsync(queue, "orders");
        await DeadLetterAllAsync(queue, "other");

        var redriven = await queue.RedriveAsync("orders", DeadLetterSelection.All, None);
        var batch = await queue.LeaseAsync("orders", 10, Lease, None);

        Assert.Equal(3, redriven);
        Assert.Empty((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters);
        Assert.Equal(ids.Order(StringComparer.Ordinal), batch.Messages.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.All(batch.Messages, m => Assert.Equal(1, m.Attempt));
        Assert.Equal(otherId, Assert.Single((await queue.ListDeadLettersAsync("other", null, 10, None)).DeadLetters).MessageId);
    }

    [Fact]
    public async Task Redrive_ByIds_BringsBackOnlyTheNamedDeadLetters()
    {
        var (queue, _) = await StartAsync("orders", "other");
        var ids = await EnqueueManyAsync(queue, "orders", 3);
        var pendingId = await EnqueueAsync(queue, "orders");
        var otherId = await EnqueueAsync(queue, "other");
        await DeadLetterAllAsync(queue, "orders", except: pendingId);
        await DeadLetterAllAsync(queue, "other");

        var redriven = await queue.RedriveAsync("orders", DeadLetterSelection.Named([ids[0], ids[2], ids[2], pendingId, otherId, "no-such-message"]), None);
        var statuses = new Dictionary<string, string?>();
        foreach (var id in ids.Append(otherId))
        {
            statuses[id] = (await queue.GetStatusAsync(id, None))?.State;
        }

        Assert.Equal(2, redriven);
        Assert.Equal(ids[1], Assert.Single((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters).MessageId);
        Assert.Equal("queued", statuses[ids[0]]);
        Assert.Equal("dead", statuses[ids[1]]);
        Assert.Equal("queued", statuses[ids[2]]);
        Assert.Equal("dead", statuses[otherId]);
        var batch = await queue.LeaseAsync("orders", 10, Lease, None);
        Assert.Equal(new[] { ids[0], ids[2], pendingId }.Order(StringComparer.Ordinal), batch.Messages.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.All(batch.Messages, m => Assert.Equal(1, m.Attempt));
    }

    [Fact]
    public async Task AttemptHistory_KeepsEveryUndeliveredAttemptAcrossARedrive_UntilTheDeadLetterIsPurged()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());

        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(first, time.GetUtcNow(), "HTTP 500", RetryKind.Failed, None, new AttemptReport(t0, TimeSpan.FromMilliseconds(12), 500)));
        var second = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.DeadLetterAsync(second, "timed out", None, new AttemptReport(t0.AddSeconds(1), TimeSpan.FromSeconds(2), null)));
        var firstLife = (await queue.GetStatusAsync(id, None))!.AttemptHistory;
        var listed = Assert.Single((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters).AttemptHistory;

        Assert.Equal(1, await queue.RedriveAsync("orders", DeadLetterSelection.All, None));
        var third = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(third, time.GetUtcNow(), "HTTP 503", RetryKind.Throttled, None, new AttemptReport(t0.AddSeconds(5), TimeSpan.FromMilliseconds(3), 503)));
        var fourth = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.DeadLetterAsync(fourth, "HTTP 400", None, new AttemptReport(t0.AddSeconds(6), TimeSpan.FromMilliseconds(4), 400)));
        var bothLives = (await queue.GetStatusAsync(id, None))!.AttemptHistory!;

        Assert.Equal([new AttemptRecord(1, t0, 12, 500, "HTTP 500", "failed"), new AttemptRecord(2, t0.AddSeconds(1), 2000, null, "timed out", "dead")], firstLife);
        Assert.Equal(firstLife, listed);

        // Attempts restart at 1 after a redrive (a throttled one gives its attempt back); the history goes on.
        Assert.Equal([1, 2, 1, 1], bothLives.Select(a => a.Attempt));
        Assert.Equal(["failed", "dead", "throttled", "dead"], bothLives.Select(a => a.Outcome));
        Assert.Equal([500, null, 503, 400], bothLives.Select(a => a.Status));
        Assert.Equal(4, AttemptHistoryRows());

        Assert.Equal(1, await queue.PurgeDeadLettersAsync("orders", DeadLetterSelection.All, None));
        Assert.Null(await queue.GetStatusAsync(id, None));
        Assert.Equal(0, AttemptHistoryRows());
    }

    [Fact]
    public async Task AttemptHistory_OfADeliveredMessage_GoesWhenItsStatusExpires()
    {
        var (queue, time) = await StartAsync("orders");
        var id = await EnqueueAsync(queue, "orders");
        var first = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(first, time.GetUtcNow(), "HTTP 502", RetryKind.Failed, None, new AttemptReport(time.GetUtcNow(), TimeSpan.FromMilliseconds(7), 502)));
        Assert.True(await queue.CompleteAsync(Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages), None));
        var delivered = await queue.GetStatusAsync(id, None);

        time.Advance(TimeSpan.FromMinutes(1));
        await queue.PurgeExpiredAsync(time.GetUtcNow(), None);

        Assert.Equal("delivered", delivered!.State);
        Assert.Equal(502, Assert.Single(delivered.AttemptHistory!).Status);
        Assert.Null(await queue.GetStatusAsync(id, None));
        Assert.Equal(0, AttemptHistoryRows());
    }

    [Fact]
    public async Task RedriveAndPurge_ByTimeOfDeath_TakeOnlyThoseThatDiedInTheRange()
    {
        var (queue, time) = await StartAsync("orders", "other");
        var early = await EnqueueAsync(queue, "orders");
        await DeadLetterAllAsync(queue, "orders");
        time.Advance(TimeSpan.FromMinutes(1));
        var from = time.GetUtcNow();
        var middle = await EnqueueAsync(queue, "orders");
        var otherMiddle = await EnqueueAsync(queue, "other");
        await DeadLetterAllAsync(queue, "orders");
        await DeadLetterAllAsync(queue, "other");
        time.Advance(TimeSpan.FromMinutes(1));
        var to = time.GetUtcNow();
        var late = await EnqueueAsync(queue, "orders");
        await DeadLetterAllAsync(queue, "orders");

        var redriven = await queue.RedriveAsync("orders", new DeadLetterSelection(DeadAfter: from, DeadBefore: to), None);
        var purged = await queue.PurgeDeadLettersAsync("orders", new DeadLetterSelection(DeadBefore: from), None);
        var purgedLater = await queue.PurgeDeadLettersAsync("orders", new DeadLetterSelection(DeadAfter: to), None);

        Assert.Equal(1, redriven);
        Assert.Equal(1, purged);
        Assert.Equal(1, purgedLater);
        Assert.Null(await queue.GetStatusAsync(early, None));
        Assert.Equal("queued", (await queue.GetStatusAsync(middle, None))?.State);
        Assert.Null(await queue.GetStatusAsync(late, None));
        Assert.Equal("dead", (await queue.GetStatusAsync(otherMiddle, None))?.State);
        Assert.Equal(0, (await queue.GetCountsAsync("orders", None))!.Dead);
        Assert.Equal(middle, Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Id);
    }

    [Fact]
    public async Task Redrive_WithNoDeadLetters_ReturnsZero()
    {
        var (queue, _) = await StartAsync("orders");
        await EnqueueAsync(queue, "orders");

        Assert.Equal(0, await queue.RedriveAsync("orders", DeadLetterSelection.All, None));
        Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Enqueue_SameDeduplicationKeyWithinWindow_ReturnsDuplicateWithFirstIdAndStoresOneMessage()
    {
        var (queue, time) = await StartAsync("orders");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);

        var first = await queue.EnqueueAsync(new NewMessage("m-1", "orders", "text/plain", "one"u8.ToArray(), "delivery-7", expires), None);
        time.Advance(TimeSpan.FromMinutes(59));
        var second = await queue.EnqueueAsync(new NewMessage("m-2", "orders", "text/plain", "two"u8.ToArray(), "delivery-7", expires + TimeSpan.FromMinutes(59)), None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-1"), first);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Duplicate, "m-1"), second);
        var message = Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
        Assert.Equal("m-1", message.Id);
        Assert.Equal("one"u8.ToArray(), message.Body);
        Assert.Null(await queue.GetStatusAsync("m-2", None));
        Assert.Equal(1, (await queue.GetCountsAsync("orders", None))!.Ingested);
    }

    [Fact]
    public async Task Enqueue_SameDeduplicationKeyAfterFirstWasDelivered_IsStillDuplicateWithinWindow()
    {
        var (queue, time) = await StartAsync("orders");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);
        await queue.EnqueueAsync(new NewMessage("m-1", "orders", null, [], "delivery-7", expires), None);
        await queue.CompleteAsync(Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages), None);

        var again = await queue.EnqueueAsync(new NewMessage("m-2", "orders", null, [], "delivery-7", expires), None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Duplicate, "m-1"), again);
        Assert.Empty((await queue.LeaseAsync("orders", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Enqueue_SameDeduplicationKeyAfterItExpired_IsAcceptedAsNew()
    {
        var (queue, time) = await StartAsync("orders");
        var expires = time.GetUtcNow() + TimeSpan.FromMinutes(10);
        await queue.EnqueueAsync(new NewMessage("m-1", "orders", null, [], "delivery-7", expires), None);
        time.Advance(TimeSpan.FromMinutes(10) + Millisecond);

        var second = await queue.EnqueueAsync(new NewMessage("m-2", "orders", null, [], "delivery-7", time.GetUtcNow() + TimeSpan.FromMinutes(10)), None);
        var third = await queue.EnqueueAsync(new NewMessage("m-3", "orders", null, [], "delivery-7", time.GetUtcNow() + TimeSpan.FromMinutes(10)), None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-2"), second);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Duplicate, "m-2"), third);
        var leased = (await queue.LeaseAsync("orders", 10, Lease, None)).Messages.Select(m => m.Id).Order(StringComparer.Ordinal);
        Assert.Equal(["m-1", "m-2"], leased);
    }

    [Fact]
    public async Task Enqueue_SameDeduplicationKeyInAnotherGroup_IsAccepted()
    {
        var (queue, time) = await StartAsync("a", "b");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);

        var inA = await queue.EnqueueAsync(new NewMessage("m-1", "a", null, [], "delivery-7", expires), None);
        var inB = await queue.EnqueueAsync(new NewMessage("m-2", "b", null, [], "delivery-7", expires), None);

        Assert.Equal(EnqueueOutcome.Accepted, inA.Outcome);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-2"), inB);
        Assert.Single((await queue.LeaseAsync("b", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Enqueue_ToUndefinedGroup_ReturnsGroupNotFoundAndStoresNothing()
    {
        var (queue, time) = await StartAsync("orders");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);

        var result = await queue.EnqueueAsync(new NewMessage("m-1", "ghost", "text/plain", "x"u8.ToArray(), "delivery-7", expires), None);

        Assert.Equal(EnqueueOutcome.GroupNotFound, result.Outcome);
        Assert.Null(await queue.GetStatusAsync("m-1", None));
        Assert.Null(await queue.GetCountsAsync("ghost", None));
        Assert.Empty(await queue.GroupsWithPendingAsync(None));
        Assert.Empty((await queue.LeaseAsync("ghost", 10, Lease, None)).Messages);

        // Nor was the delivery id remembered: once the group exists, the same delivery is new.
        await DefineGroupAsync("ghost");
        var retried = await queue.EnqueueAsync(new NewMessage("m-2", "ghost", "text/plain", "x"u8.ToArray(), "delivery-7", expires), None);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-2"), retried);
        Assert.Equal("m-2", Assert.Single((await queue.LeaseAsync("ghost", 10, Lease, None)).Messages).Id);
    }

    [Fact]
    public async Task Enqueue_ManyAtOnce_EachGetsItsOwnOutcome_AndEveryAcceptedMessageIsStoredWithItsBody()
    {
        var (queue, time) = await StartAsync("orders", "invoices");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);

        // Concurrent requests share writer batches: keyless ones go in multi-row inserts, keyed ones one by one,
        // unknown groups among them. Each caller must still get the answer for its own message.
        var sends = Enumerable.Range(0, 150).Select(i => queue.EnqueueAsync(new NewMessage(
            $"m-{i:000}",
            (i % 3) switch { 0 => "orders", 1 => "invoices", _ => "ghost" },
            "text/plain",
            System.Text.Encoding.UTF8.GetBytes($"body {i}"),
            i % 5 == 0 ? $"delivery-{i}" : null,
            expires), None)).ToList();
        var results = await Task.WhenAll(sends);

        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal($"m-{i:000}", results[i].MessageId);
            Assert.Equal(i % 3 == 2 ? EnqueueOutcome.GroupNotFound : EnqueueOutcome.Accepted, results[i].Outcome);
        }

        foreach (var group in new[] { "orders", "invoices" })
        {
            // SQS hands out at most ten messages per receive.
            var leased = new List<LeasedMessage>();
            for (var call = 0; call < 20 && leased.Count < 50; call++)
            {
                leased.AddRange((await queue.LeaseAsync(group, 100, Lease, None)).Messages);
            }

            Assert.Equal(50, leased.Count);
            Assert.All(leased, m => Assert.Equal($"body {int.Parse(m.Id[2..], System.Globalization.CultureInfo.InvariantCulture)}", System.Text.Encoding.UTF8.GetString(m.Body)));
            Assert.Equal(50, (await queue.GetCountsAsync(group, None))!.Ingested);
        }

        Assert.Null(await queue.GetCountsAsync("ghost", None));
    }

    [Fact]
    public async Task GetCounts_AfterMixedScenario_ReportsSizesAndTotals()
    {
        var (queue, time) = await StartAsync("orders", "other");
        var expires = time.GetUtcNow() + TimeSpan.FromHours(1);
        var delivered = await EnqueueAsync(queue, "orders");
        var deliveredOnSecondTry = await EnqueueAsync(queue, "orders");
        var throttledThenDead = await EnqueueAsync(queue, "orders");
        var dead = await EnqueueAsync(queue, "orders");
        await queue.EnqueueAsync(new NewMessage("waiting", "orders", null, [], "delivery-1", expires), None);
        await queue.EnqueueAsync(new NewMessage("duplicate", "orders", null, [], "delivery-1", expires), None);
        await EnqueueManyAsync(queue, "other", 4);

        var initial = await queue.GetCountsAsync("orders", None);
        var first = await LeaseAllAsync(queue, "orders");
        Assert.True(await queue.CompleteAsync(first[delivered], None));
        Assert.True(await queue.RetryAsync(first[deliveredOnSecondTry], time.GetUtcNow(), "500", RetryKind.Failed, None));
        Assert.True(await queue.RetryAsync(first[throttledThenDead], time.GetUtcNow(), "429", RetryKind.Throttled, None));
        Assert.True(await queue.DeadLetterAsync(first[dead], "bad payload", None));
        Assert.True(await queue.ReleaseAsync(first["waiting"], None));
        var second = await LeaseAllAsync(queue, "orders");
        Assert.Equal(new[] { deliveredOnSecondTry, throttledThenDead, "waiting" }.Order(StringComparer.Ordinal), second.Keys.Order(StringComparer.Ordinal));
        Assert.True(await queue.CompleteAsync(second[deliveredOnSecondTry], None));
        Assert.True(await queue.DeadLetterAsync(second[throttledThenDead], "gone", None));
        Assert.True(await queue.ReleaseAsync(second["waiting"], None));
        var afterProcessing = await queue.GetCountsAsync("orders", None);
        await queue.RedriveAsync("orders", DeadLetterSelection.Named([dead]), None);
        var afterRedrive = await queue.GetCountsAsync("orders", None);

        Assert.Equal(new QueueCounts(Queued: 5, Dead: 0, Ingested: 5, Delivered: 0, Failed: 0, DeadLettered: 0, Throttled: 0), initial);

        // A dead-lettering is the last failed attempt, so it counts in Failed as well as in DeadLettered.
        Assert.Equal(new QueueCounts(Queued: 1, Dead: 2, Ingested: 5, Delivered: 2, Failed: 3, DeadLettered: 2, Throttled: 1), afterProcessing);
        Assert.Equal(new QueueCounts(Queued: 2, Dead: 1, Ingested: 5, Delivered: 2, Failed: 3, DeadLettered: 2, Throttled: 1), afterRedrive);
        Assert.Equal(new QueueCounts(Queued: 4, Dead: 0, Ingested: 4, Delivered: 0, Failed: 0, DeadLettered: 0, Throttled: 0), await queue.GetCountsAsync("other", None));
    }

    [Fact]
    public async Task GetCounts_ForUndefinedGroup_ReturnsNull()
    {
        var (queue, _) = await StartAsync("orders");

        Assert.Null(await queue.GetCountsAsync("ghost", None));
        Assert.Equal(new QueueCounts(0, 0, 0, 0, 0, 0, 0), await queue.GetCountsAsync("orders", None));
    }

    [Fact]
    public async Task GroupsWithPending_ListsExactlyTheGroupsWithPendingMessages()
    {
        var (queue, time) = await StartAsync("queued", "retrying", "leased", "delivered", "dead", "empty");
        await EnqueueAsync(queue, "queued");
        await EnqueueAsync(queue, "retrying");
        var retrying = Assert.Single((await queue.LeaseAsync("retrying", 10, Lease, None)).Messages);
        await queue.RetryAsync(retrying, time.GetUtcNow() + TimeSpan.FromHours(1), "later", RetryKind.Failed, None);
        await EnqueueAsync(queue, "leased");
        Assert.Single((await queue.LeaseAsync("leased", 10, Lease, None)).Messages);
        await EnqueueAsync(queue, "delivered");
        await queue.CompleteAsync(Assert.Single((await queue.LeaseAsync("delivered", 10, Lease, None)).Messages), None);
        await EnqueueAsync(queue, "dead");
        await DeadLetterAllAsync(queue, "dead");

        var groups = await queue.GroupsWithPendingAsync(None);

        // A leased message is still pending: if its holder dies, the lease runs out and someone must pick it up.
        Assert.Equal(["leased", "queued", "retrying"], groups.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task GroupsWithPending_WithNoMessages_IsEmpty()
    {
        var (queue, _) = await StartAsync("orders");

        Assert.Empty(await queue.GroupsWithPendingAsync(None));
    }

    [Fact]
    public async Task PurgeExpired_RemovesDeliveredStatusesOlderThanCutoffButNeverPendingOrDeadMessages()
    {
        var (queue, time) = await StartAsync("orders");
        var oldDelivered = await EnqueueAsync(queue, "orders");
        var oldDead = await EnqueueAsync(queue, "orders");
        var oldPending = await EnqueueAsync(queue, "orders");
        var oldRetrying = await EnqueueAsync(queue, "orders");
        var first = await LeaseAllAsync(queue, "orders");
        Assert.True(await queue.CompleteAsync(first[oldDelivered], None));
        Assert.True(await queue.DeadLetterAsync(first[oldDead], "bad", None));
        Assert.True(await queue.ReleaseAsync(first[oldPending], None));
        Assert.True(await queue.RetryAsync(first[oldRetrying], time.GetUtcNow() + TimeSpan.FromDays(1), "later", RetryKind.Failed, None));
        time.Advance(TimeSpan.FromHours(2));
        var newDelivered = await EnqueueAsync(queue, "orders");
        var second = await LeaseAllAsync(queue, "orders");
        Assert.True(await queue.CompleteAsync(second[newDelivered], None));
        Assert.True(await queue.ReleaseAsync(second[oldPending], None));

        var purged = await queue.PurgeExpiredAsync(time.GetUtcNow() - TimeSpan.FromHours(1), None);

        Assert.Equal(1, purged);
        Assert.Null(await queue.GetStatusAsync(oldDelivered, None));
        Assert.Equal("delivered", (await queue.GetStatusAsync(newDelivered, None))?.State);
        Assert.Equal("dead", (await queue.GetStatusAsync(oldDead, None))?.State);
        Assert.Equal("queued", (await queue.GetStatusAsync(oldPending, None))?.State);
        Assert.Equal("queued", (await queue.GetStatusAsync(oldRetrying, None))?.State);
        Assert.Equal(oldDead, Assert.Single((await queue.ListDeadLettersAsync("orders", null, 10, None)).DeadLetters).MessageId);
        Assert.Equal(oldPending, Assert.Single((await queue.LeaseAsync("orders", 10, Lease, None)).Messages).Id);
        Assert.Equal(0, await queue.PurgeExpiredAsync(time.GetUtcNow() - TimeSpan.FromHours(1), None));
    }

    [Fact]
    public async Task PurgeExpired_KeepsDeduplicationKeysThatHaveNotExpired()
    {
        var (queue, time) = await StartAsync("orders");
        await queue.EnqueueAsync(new NewMessage("m-1", "orders", null, [], "delivery-7", time.GetUtcNow() + TimeSpan.FromMinutes(5)), None);
        await queue.EnqueueAsync(new NewMessage("m-2", "orders", null, [], "delivery-8", time.GetUtcNow() + TimeSpan.FromHours(5)), None);
        time.Advance(TimeSpan.FromMinutes(6));

        await queue.PurgeExpiredAsync(time.GetUtcNow() - TimeSpan.FromHours(1), None);
        var expiredKey = await queue.EnqueueAsync(new NewMessage("m-3", "orders", null, [], "delivery-7", time.GetUtcNow() + TimeSpan.FromMinutes(5)), None);
        var liveKey = await queue.EnqueueAsync(new NewMessage("m-4", "orders", null, [], "delivery-8", time.GetUtcNow() + TimeSpan.FromMinutes(5)), None);

        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, "m-3"), expiredKey);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Duplicate, "m-2"), liveKey);
    }

    [Fact]
    public async Task ConcurrentEnqueuesAndLeases_LeaseEveryMessageExactlyOnce()
    {
        const int Messages = 200;
        var (queue, _) = await StartAsync("orders");
        var ids = Enumerable.Range(0, Messages).Select(i => $"c-{i:D3}").ToList();

        var results = await Task.WhenAll(ids.Select(id => Task.Run(() =>
            queue.EnqueueAsync(new NewMessage(id, "orders", "text/plain", Encoding.UTF8.GetBytes(id), null, default), None))));

        Assert.All(results, r => Assert.Equal(EnqueueOutcome.Accepted, r.Outcome));
        Assert.Equal(ids, results.Select(r => r.MessageId).Order(StringComparer.Ordinal));

        var leased = new ConcurrentBag<LeasedMessage>();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var batch = await queue.LeaseAsync("orders", 7, Lease, None);
                if (batch.Messages.Count == 0)
                {
                    return;
                }

                foreach (var message in batch.Messages)
                {
                    leased.Add(message);
                }
            }
        })));

        var leasedIds = leased.Select(m => m.Id).ToList();
        Assert.Equal(leasedIds.Count, leasedIds.Distinct().Count());
        Assert.Equal(ids, leasedIds.Order(StringComparer.Ordinal));
        Assert.All(leased, m => Assert.Equal(m.Id, Encoding.UTF8.GetString(m.Body)));
        Assert.All(leased, m => Assert.Equal(1, m.Attempt));
    }

    [Fact]
    public async Task Continue_QueuesTheNextStepAtOnce_WithItsCursor_AttemptsStartAgain_AndTheStatusShowsTheChain()
    {
        var (queue, time) = await StartAsync("jobs");
        var id = await EnqueueAsync(queue, "jobs");
        var first = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(first, time.GetUtcNow(), "500", RetryKind.Failed, None));
        var retried = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        time.Advance(TimeSpan.FromSeconds(1));
        var finishedAt = time.GetUtcNow();

        var continued = await queue.ContinueAsync(retried, "page=2", 202, None);
        var second = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);

        Assert.True(continued);
        Assert.Equal((1, null, 2), (first.Step, first.Cursor, retried.Attempt));
        Assert.Equal(id, second.Id);
        Assert.Equal((2, "page=2", 1), (second.Step, second.Cursor, second.Attempt));
        Assert.Equal(id, Encoding.UTF8.GetString(second.Body));
        Assert.Equal("text/plain", second.ContentType);
        var status = (await queue.GetStatusAsync(id, None))!;
        Assert.Equal((2, "page=2"), (status.Step, status.Cursor));
        Assert.Equal([new ClusterQueue.Contracts.MessageStep(1, "page=2", 202, finishedAt)], status.Steps!);

        Assert.True(await queue.ContinueAsync(second, "page=3", 200, None));
        var third = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.CompleteAsync(third, None));

        Assert.Equal((3, "page=3", 1), (third.Step, third.Cursor, third.Attempt));
        var done = (await queue.GetStatusAsync(id, None))!;
        Assert.Equal("delivered", done.State);
        Assert.Equal(["page=2", "page=3"], done.Steps!.Select(s => s.Cursor));
        Assert.Empty((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Continue_TwiceWithOneReceipt_AdvancesTheChainOnce()
    {
        var (queue, _) = await StartAsync("jobs");
        var id = await EnqueueAsync(queue, "jobs");
        var message = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);

        Assert.True(await queue.ContinueAsync(message, "c1", 202, None));
        Assert.False(await queue.ContinueAsync(message, "c1", 202, None));

        var next = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.Equal(2, next.Step);
        Assert.Single((await queue.GetStatusAsync(id, None))!.Steps!);
        Assert.Empty((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
    }

    [Fact]
    public async Task Complete_WithAResult_OfAMessageThatWantsIt_KeepsItInTheStatus_TextOrNot()
    {
        var (queue, _) = await StartAsync("sync");
        string[] ids = ["sync-text", "sync-binary", "sync-plain"];
        foreach (var id in ids)
        {
            await queue.EnqueueAsync(new NewMessage(id, "sync", "text/plain", Encoding.UTF8.GetBytes(id), null, default, WantsResult: id != "sync-plain"), None);
        }

        var leased = await LeaseAllAsync(queue, "sync");
        Assert.Equal([true, true, false], ids.Select(id => leased[id].WantsResult));
        Assert.True(await queue.CompleteAsync(leased["sync-text"], new DeliveryResult(201, "application/json", """{"made":true}"""u8.ToArray()), None));
        Assert.True(await queue.CompleteAsync(leased["sync-binary"], new DeliveryResult(200, "application/octet-stream", [0xff, 0x00, 0xfe]), None));
        Assert.True(await queue.CompleteAsync(leased["sync-plain"], None));

        Assert.Equal(new ClusterQueue.Contracts.MessageResult(201, "application/json", """{"made":true}""", null), (await queue.GetStatusAsync("sync-text", None))!.Result);
        Assert.Equal(new ClusterQueue.Contracts.MessageResult(200, "application/octet-stream", null, "/wD+"), (await queue.GetStatusAsync("sync-binary", None))!.Result);
        Assert.Null((await queue.GetStatusAsync("sync-plain", None))!.Result);
    }

    [Fact]
    public async Task AttemptHistory_OfAContinuedMessage_NamesTheStepOfEachAttempt()
    {
        var (queue, time) = await StartAsync("jobs");
        var id = await EnqueueAsync(queue, "jobs");
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());

        var step1 = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(step1, time.GetUtcNow(), "HTTP 500", RetryKind.Failed, None, new AttemptReport(t0, TimeSpan.FromMilliseconds(5), 500)));
        step1 = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.ContinueAsync(step1, "c1", 202, None));
        var step2 = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.RetryAsync(step2, time.GetUtcNow(), "HTTP 502", RetryKind.Failed, None, new AttemptReport(t0.AddSeconds(1), TimeSpan.FromMilliseconds(6), 502)));
        step2 = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.DeadLetterAsync(step2, "HTTP 400", None, new AttemptReport(t0.AddSeconds(2), TimeSpan.FromMilliseconds(7), 400)));

        var history = (await queue.GetStatusAsync(id, None))!.AttemptHistory!;
        var listed = Assert.Single((await queue.ListDeadLettersAsync("jobs", null, 10, None)).DeadLetters).AttemptHistory!;

        Assert.Equal([(1, 1, "failed"), (2, 1, "failed"), (2, 2, "dead")], history.Select(a => (a.Step, a.Attempt, a.Outcome)));
        Assert.Equal(history, listed);
    }

    [Fact]
    public async Task Redrive_OfAContinuedDeadLetter_ResumesTheChainAtItsStepWithItsCursor()
    {
        var (queue, _) = await StartAsync("jobs");
        var id = await EnqueueAsync(queue, "jobs");
        var first = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.ContinueAsync(first, "c1", 202, None));
        var second = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        Assert.True(await queue.DeadLetterAsync(second, "HTTP 500", None));

        Assert.Equal(1, await queue.RedriveAsync("jobs", DeadLetterSelection.All, None));
        var resumed = Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);

        Assert.Equal((id, 2, "c1", 1), (resumed.Id, resumed.Step, resumed.Cursor, resumed.Attempt));
        Assert.True(await queue.ContinueAsync(resumed, "c2", 202, None));
        Assert.Equal(3, Assert.Single((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages).Step);
        Assert.Equal(["c1", "c2"], (await queue.GetStatusAsync(id, None))!.Steps!.Select(s => s.Cursor));
    }

    protected async Task<(IMessageQueue Queue, FakeTimeProvider Time)> StartAsync(params string[] groups)
    {
        var time = new FakeTimeProvider();
        var queue = await CreateQueueAsync(time);
        foreach (var group in groups)
        {
            await DefineGroupAsync(group);
        }

        return (queue, time);
    }

    protected async Task<string> EnqueueAsync(IMessageQueue queue, string groupId, byte[]? body = null)
    {
        var id = $"{groupId}-{Interlocked.Increment(ref _nextId):D4}";
        var result = await queue.EnqueueAsync(new NewMessage(id, groupId, "text/plain", body ?? Encoding.UTF8.GetBytes(id), null, default), None);
        Assert.Equal(new EnqueueResult(EnqueueOutcome.Accepted, id), result);
        return id;
    }

    /// <summary>Enqueues concurrently, as a burst of ingress requests would; returns the ids in no particular order.</summary>
    protected async Task<IReadOnlyList<string>> EnqueueManyAsync(IMessageQueue queue, string groupId, int count) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(_ => EnqueueAsync(queue, groupId)));

    /// <summary>Leases every visible message of the group, by id, in as many calls as the backend needs (SQS hands out ten at most).</summary>
    protected static async Task<Dictionary<string, LeasedMessage>> LeaseAllAsync(IMessageQueue queue, string groupId)
    {
        var leased = new Dictionary<string, LeasedMessage>();
        while (true)
        {
            var batch = await queue.LeaseAsync(groupId, 1000, Lease, None);
            if (batch.Messages.Count == 0)
            {
                return leased;
            }

            foreach (var message in batch.Messages)
            {
                Assert.True(leased.TryAdd(message.Id, message), $"{message.Id} was leased twice");
            }
        }
    }

    protected static async Task DeadLetterAllAsync(IMessageQueue queue, string groupId, string? except = null)
    {
        foreach (var message in (await LeaseAllAsync(queue, groupId)).Values)
        {
            if (message.Id == except)
            {
                Assert.True(await queue.ReleaseAsync(message, None));
                continue;
            }

            Assert.True(await queue.DeadLetterAsync(message, "dead", None));
        }
    }
}
