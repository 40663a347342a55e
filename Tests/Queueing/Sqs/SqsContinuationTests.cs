using System.Text;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// Continuations on the SQS queue when a node dies between its writes: the record's step decides which copy carries
/// the chain, so a copy left behind is never called, a step whose send was lost is sent again, and two copies of one
/// step converge at their next continuation. Each crash is staged by doing only the writes that happened before it.
/// </summary>
public sealed class SqsContinuationTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>, IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>The lease of the copy the "crashed" node held: SQS counts whole seconds.</summary>
    private static readonly TimeSpan CrashedLease = TimeSpan.FromSeconds(1);

    private static readonly CancellationToken None = CancellationToken.None;

    private readonly SqsQueueRig _rig = new(emulator);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task ACrashAfterTheRecordAdvanced_LeavesACopyThatIsNeverCalled_AndTheMissedStepIsSent()
    {
        var (queue, step1) = await LeaseFirstStepAsync();

        // The node advanced the record, then died before sending step 2 or deleting this copy.
        Assert.True(await new MessageRecords(_rig.Database, _time).AdvanceStepAsync(step1, "c1", 202, None));
        await Task.Delay(CrashedLease + TimeSpan.FromMilliseconds(600));

        var received = await LeaseStepsAsync(queue, count: 1);

        var step2 = Assert.Single(received);
        Assert.Equal((2, "c1", 1), (step2.Step, step2.Cursor, step2.Attempt));
        Assert.Equal("job-1", Encoding.UTF8.GetString(step2.Body));
        Assert.True(await queue.CompleteAsync(step2, None));
        await AssertDoneAsync(queue, ["c1"]);
    }

    [Fact]
    public async Task ACrashAfterTheNextStepWasSentAndMarked_LeavesACopyThatSendsNothing()
    {
        var (queue, step1) = await LeaseFirstStepAsync();

        // The node advanced the record, sent step 2 and marked it sent, then died before deleting this copy.
        var records = new MessageRecords(_rig.Database, _time);
        Assert.True(await records.AdvanceStepAsync(step1, "c1", 202, None));
        var url = await _rig.Client.QueueUrlAsync(_rig.QueueName("jobs"));
        await _rig.Client.SendAsync(url, SqsEnvelope.Encode(step1.Id, step1.CreatedAt, step1.ContentType, step1.Body, 0, offloaded: false, step: 2, cursor: "c1"));
        await records.MarkStepSentAsync(step1.Id, 2, None);
        await Task.Delay(CrashedLease + TimeSpan.FromMilliseconds(600));

        // Only the sent step 2: the left-behind step 1 is deleted without a replacement.
        var step2 = Assert.Single(await LeaseStepsAsync(queue, count: 1));
        Assert.Equal((2, "c1"), (step2.Step, step2.Cursor));
        Assert.True(await queue.CompleteAsync(step2, None));
        await AssertDoneAsync(queue, ["c1"]);
    }

    [Fact]
    public async Task ACrashBetweenTheNextStepsSendAndItsMark_RunsThatStepTwiceAtMost_AndTheCopiesConvergeAtTheirNextContinuation()
    {
        var (queue, step1) = await LeaseFirstStepAsync();

        // The node advanced the record and sent step 2, then died before marking it sent or deleting this copy.
        Assert.True(await new MessageRecords(_rig.Database, _time).AdvanceStepAsync(step1, "c1", 202, None));
        var url = await _rig.Client.QueueUrlAsync(_rig.QueueName("jobs"));
        await _rig.Client.SendAsync(url, SqsEnvelope.Encode(step1.Id, step1.CreatedAt, step1.ContentType, step1.Body, 0, offloaded: false, step: 2, cursor: "c1"));
        await Task.Delay(CrashedLease + TimeSpan.FromMilliseconds(600));

        // The sent step 2, and the copy of step 2 the left-behind step 1 is replaced by (without the mark, its receive
        // cannot tell whether the send happened).
        var copies = await LeaseStepsAsync(queue, count: 2);
        Assert.All(copies, c => Assert.Equal((2, "c1"), (c.Step, c.Cursor)));

        var advanced = await Task.WhenAll(copies.Select(c => queue.ContinueAsync(c, "c2", 202, None)));
        Assert.Equal(1, advanced.Count(a => a));

        var step3 = Assert.Single(await LeaseStepsAsync(queue, count: 1));
        Assert.Equal((3, "c2"), (step3.Step, step3.Cursor));
        Assert.True(await queue.CompleteAsync(step3, None));
        await AssertDoneAsync(queue, ["c1", "c2"]);
    }

    [Fact]
    public async Task ARedrivenCopyCalledBeforeItsRedriveFinished_ContinuesTheChain()
    {
        var (queue, step1) = await LeaseFirstStepAsync(Lease);
        Assert.True(await queue.ContinueAsync(step1, "c1", 202, None));
        var step2 = Assert.Single(await LeaseStepsAsync(queue, count: 1));
        Assert.True(await queue.DeadLetterAsync(step2, "HTTP 500", None));

        // The redrive marked the record and sent its copy; the copy is called and continues before the redrive ends.
        var records = new MessageRecords(_rig.Database, _time);
        Assert.Equal(["job-1"], await records.BeginRedriveAsync(["job-1"], None));
        var url = await _rig.Client.QueueUrlAsync(_rig.QueueName("jobs"));
        await _rig.Client.SendAsync(url, SqsEnvelope.Encode("job-1", step1.CreatedAt, step1.ContentType, step1.Body, 0, offloaded: false, step: 2, cursor: "c1"));
        var redriven = Assert.Single(await LeaseStepsAsync(queue, count: 1));
        Assert.True(await queue.ContinueAsync(redriven, "c2", 202, None));
        await records.FinishRedriveAsync(["job-1"], [], None);

        var step3 = Assert.Single(await LeaseStepsAsync(queue, count: 1));
        Assert.Equal((3, "c2"), (step3.Step, step3.Cursor));
        Assert.True(await queue.CompleteAsync(step3, None));
        await AssertDoneAsync(queue, ["c1", "c2"]);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _rig.DisposeAsync().AsTask();

    private async Task<(SqsMessageQueue Queue, LeasedMessage Step1)> LeaseFirstStepAsync(TimeSpan? lease = null)
    {
        var queue = _rig.Start(_time);
        await _rig.DefineGroupAsync("jobs");
        await queue.EnqueueAsync(new NewMessage("job-1", "jobs", "text/plain", "job-1"u8.ToArray(), null, default), None);
        var step1 = Assert.Single((await queue.LeaseAsync("jobs", 10, lease ?? CrashedLease, None)).Messages);
        return (queue, step1);
    }

    /// <summary>Leases until <paramref name="count"/> copies came (a left-behind copy's receive yields none), then checks no more come.</summary>
    private static async Task<List<LeasedMessage>> LeaseStepsAsync(SqsMessageQueue queue, int count)
    {
        var received = new List<LeasedMessage>();
        for (var i = 0; i < 20 && received.Count < count; i++)
        {
            received.AddRange((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        }

        Assert.Equal(count, received.Count);
        Assert.Empty((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
        return received;
    }

    private static async Task AssertDoneAsync(SqsMessageQueue queue, string[] cursors)
    {
        var status = (await queue.GetStatusAsync("job-1", None))!;
        Assert.Equal("delivered", status.State);
        Assert.Equal(cursors, status.Steps!.Select(s => s.Cursor));
        Assert.Empty((await queue.LeaseAsync("jobs", 10, Lease, None)).Messages);
    }
}
