using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// The send batcher against a real SQS-compatible server (fauxqs) through the AWS SDK's client; every test makes its
/// own queue. Calls pass through a <see cref="BatchRecorder"/> that records each SendMessageBatch and can hold calls on their way out: a test that
/// holds the first batches knows every later send is waiting when they return, so it asserts the batching rule
/// itself, whatever the machine's speed, and never a duration.
/// </summary>
public sealed class SqsSendBatcherTests : IClassFixture<SqsEmulator>, IDisposable
{
    private static readonly string[] AllAttributes = ["All"];

    private static readonly BasicAWSCredentials Credentials = new("test", "test");

    private readonly BatchRecorder _recorder = new();
    private readonly AmazonSQSClient _client;

    public SqsSendBatcherTests(SqsEmulator emulator)
    {
        _client = SqsSetup.CreateClient(
            new SqsOptions { ServiceUrl = emulator.Endpoint.ToString() },
            Credentials,
            new SqsHttp(transport =>
            {
                _recorder.InnerHandler = transport;
                return _recorder;
            }));
    }

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task FiftyConcurrentSends_AreAllAccepted_AndEachIsReceivedOnceWithItsOwnBodyAndAttributes()
    {
        var url = await NewQueueAsync("fifty");
        var batcher = new SqsSendBatcher(_client);

        // From the thread pool, so the batcher's lock really is contended.
        var ids = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => batcher.SendAsync(url, Numbered(i), CancellationToken.None))));

        Assert.Equal(50, ids.Distinct().Count());
        var received = await ReceiveAllAsync(url, expected: 50);
        Assert.Equal(
            ids.Select((id, i) => $"{id} {Numbered(i).Body} {Describe(Numbered(i).Attributes!)}").Order(),
            received.Select(m => $"{m.MessageId} {m.Body} {Describe(m.MessageAttributes)}").Order());
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task SendsArrivingWhileEverySlotIsBusy_AreCoalescedIntoBatchesOfAtMostTen()
    {
        var url = await NewQueueAsync("coalesce");
        var batcher = new SqsSendBatcher(_client, maxBatchesInFlightPerQueue: 4);

        _recorder.Hold();
        var sends = Enumerable.Range(0, 50).Select(i => batcher.SendAsync(url, Numbered(i), CancellationToken.None)).ToList();
        _recorder.Release();
        var ids = await Task.WhenAll(sends);

        // The first four find a free slot and leave alone; the other 46 wait, and each finishing batch takes up to 10.
        Assert.Equal([1, 1, 1, 1, 6, 10, 10, 10, 10], _recorder.Batches.Select(b => b.Entries).Order());
        Assert.True(_recorder.Batches.Count < sends.Count);
        Assert.Equal(50, ids.Distinct().Count());
        Assert.Equal(50, (await ReceiveAllAsync(url, expected: 50)).Count);
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task TheByteLimit_SplitsBatches_CountingUtf8BodyBytesAndAttributes()
    {
        var url = await NewQueueAsync("bytes");

        // Each message is 100 bytes as SQS counts them, so 250 holds two. Counting characters (71 each) would fit
        // three, and leaving out the attribute (60 each) four: either mistake shows in the batch sizes.
        var batcher = new SqsSendBatcher(_client, maxBatchBytes: 250, maxBatchesInFlightPerQueue: 1);
        var messages = Enumerable.Range(0, 20).Select(HundredBytes).ToList();
        Assert.All(messages, m => Assert.Equal(31, m.Body.Length));

        _recorder.Hold();
        var sends = messages.Select(m => batcher.SendAsync(url, m, CancellationToken.None)).ToList();
        _recorder.Release();
        var ids = await Task.WhenAll(sends);

        // One slot, so batches go one after another: the first alone, then the 19 that waited, two at a time.
        Assert.Equal([1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1], _recorder.Batches.Select(b => b.Entries));
        Assert.All(_recorder.Batches, b => Assert.Equal(100 * b.Entries, b.PayloadBytes));
        Assert.Equal(20, ids.Distinct().Count());
        Assert.Equal(messages.Select(m => m.Body).Order(), (await ReceiveAllAsync(url, expected: 20)).Select(m => m.Body).Order());
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task SendsToAQueueThatDoesNotExist_FailEveryCaller_WithQueueDoesNotExist()
    {
        var url = await NewQueueAsync("gone");
        await _client.DeleteQueueAsync(url);
        var batcher = new SqsSendBatcher(_client, maxBatchesInFlightPerQueue: 1);

        _recorder.Hold();
        var sends = Enumerable.Range(0, 6).Select(i => batcher.SendAsync(url, Numbered(i), CancellationToken.None)).ToList();
        _recorder.Release();

        foreach (var send in sends)
        {
            var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => send);
            Assert.Equal(SqsErrorKind.QueueDoesNotExist, SqsErrors.Classify(error));
        }

        Assert.Equal([1, 5], _recorder.Batches.Select(b => b.Entries));
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task AnEntrySqsRefuses_FailsOnlyItsOwnCaller_AndTheRestOfItsBatchIsAccepted()
    {
        var url = await NewQueueAsync("refused");
        var batcher = new SqsSendBatcher(_client, maxBatchesInFlightPerQueue: 1);

        _recorder.Hold();
        var first = batcher.SendAsync(url, new SqsOutgoingMessage("first"), CancellationToken.None);
        var before = batcher.SendAsync(url, new SqsOutgoingMessage("before"), CancellationToken.None);

        // U+0001 is outside the characters SQS allows in a body: a real per-entry refusal, not a failed call.
        var refused = batcher.SendAsync(url, new SqsOutgoingMessage("control \u0001 character"), CancellationToken.None);
        var after = batcher.SendAsync(url, new SqsOutgoingMessage("after"), CancellationToken.None);
        _recorder.Release();

        var error = await Assert.ThrowsAsync<AmazonSQSException>(() => refused);
        Assert.Equal(SqsErrorKind.InvalidRequest, SqsErrors.Classify(error));
        Assert.EndsWith("InvalidMessageContents", error.ErrorCode, StringComparison.Ordinal);
        await Task.WhenAll(first, before, after);
        Assert.Equal([1, 3], _recorder.Batches.Select(b => b.Entries));
        Assert.Equal(["after", "before", "first"], (await ReceiveAllAsync(url, expected: 3)).Select(m => m.Body).Order());
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task CancellingAWaitingSend_WithdrawsIt_WhileASendAlreadyInABatchGetsItsRealOutcome()
    {
        var url = await NewQueueAsync("cancel");
        var batcher = new SqsSendBatcher(_client, maxBatchesInFlightPerQueue: 1);
        using var inBatchToken = new CancellationTokenSource();
        using var waitingToken = new CancellationTokenSource();

        _recorder.Hold();
        var inBatch = batcher.SendAsync(url, new SqsOutgoingMessage("in a batch"), inBatchToken.Token);
        var waiting = batcher.SendAsync(url, new SqsOutgoingMessage("withdrawn"), waitingToken.Token);

        // CancelAsync returns once the token's callbacks have run, so the withdrawal has happened by then.
        await waitingToken.CancelAsync();
        Assert.True(waiting.IsCanceled, "a waiting send is withdrawn as soon as its token is cancelled");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await inBatchToken.CancelAsync();
        Assert.False(inBatch.IsCompleted, "a send already on the wire waits for SQS's answer");
        Assert.Equal(1, batcher.QueuesTracked);
        _recorder.Release();

        var id = await inBatch;
        Assert.Equal(id, Assert.Single(await ReceiveAllAsync(url, expected: 1)).MessageId);
        Assert.Equal(1, Assert.Single(_recorder.Batches).Entries);
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task ASendWhoseTokenIsAlreadyCancelled_IsCancelled_AndSendsNothing()
    {
        var url = await NewQueueAsync("precancel");
        var batcher = new SqsSendBatcher(_client);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batcher.SendAsync(url, new SqsOutgoingMessage("never"), new CancellationToken(canceled: true)));

        Assert.Empty(_recorder.Batches);
        Assert.Equal(0, batcher.QueuesTracked);
    }

    [Fact]
    public async Task CancellationsRacingTheBatches_NeverLie_EverySendAcceptedIsReceivedAndNoWithdrawnOneIs()
    {
        var url = await NewQueueAsync("race");
        var batcher = new SqsSendBatcher(_client, maxBatchesInFlightPerQueue: 2);
        var tokens = Enumerable.Range(0, 60).Select(_ => new CancellationTokenSource()).ToList();

        _recorder.Hold();
        var sends = tokens.Select((t, i) => batcher.SendAsync(url, Numbered(i), t.Token)).ToList();

        // Every odd send is cancelled while batches finish: some are withdrawn, some are already on their way.
        var cancelling = Task.WhenAll(tokens.Where((_, i) => i % 2 == 1).Select(t => Task.Run(t.CancelAsync)));
        _recorder.Release();
        await cancelling;

        var accepted = new List<string>();
        for (var i = 0; i < sends.Count; i++)
        {
            try
            {
                await sends[i];
                accepted.Add(Numbered(i).Body);
            }
            catch (OperationCanceledException)
            {
                Assert.True(i % 2 == 1, $"send {i} was never cancelled, yet it was withdrawn");
            }
        }

        Assert.Equal(accepted.Order(), (await ReceiveAllAsync(url, expected: accepted.Count)).Select(m => m.Body).Order());
        Assert.Equal(accepted.Count, _recorder.Batches.Sum(b => b.Entries));
        Assert.Equal(0, batcher.QueuesTracked);
        tokens.ForEach(t => t.Dispose());
    }

    /// <summary>
    /// fauxqs only ever refuses entries for the sender's fault and always answers for every entry, so SQS's own
    /// per-entry faults and a malformed answer are provoked with a loopback server that answers as scripted.
    /// </summary>
    [Fact]
    public async Task AnEntryFailedOnSqsSide_IsUnavailable_AndAnEntryMissingFromTheAnswerStillEndsItsCallersWait()
    {
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;

        // The SDK checks the MD5 of every body SQS says it accepted, so the script answers with the real ones.
        var (app, address) = await LoopbackServer.StartAsync(async context =>
        {
            string reply;
            if (Interlocked.Increment(ref calls) == 1)
            {
                await releaseFirst.Task;
                reply = """{"Successful":[{"Id":"0","MessageId":"m-first","MD5OfMessageBody":"8b04d5e3775d298e78455efc5ca404d5"}],"Failed":[]}""";
            }
            else
            {
                reply = """{"Successful":[{"Id":"0","MessageId":"m-accepted","MD5OfMessageBody":"3e4d891a5df3d6d0d7dd9432a1bc6470"}],"Failed":[{"Id":"1","SenderFault":false,"Code":"InternalError","Message":"try again"}]}""";
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-amz-json-1.0";
            await context.Response.WriteAsync(reply);
        });
        try
        {
            await SendThroughScriptedServerAsync(address, releaseFirst);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        Assert.Equal(2, calls);
    }

    private static async Task SendThroughScriptedServerAsync(Uri address, TaskCompletionSource releaseFirst)
    {
        using var client = SqsSetup.CreateClient(new SqsOptions { ServiceUrl = address.ToString() }, Credentials);
        var batcher = new SqsSendBatcher(client, maxBatchesInFlightPerQueue: 1);
        const string queueUrl = "http://sqs.us-east-1.localhost:1/000000000000/q";

        var first = batcher.SendAsync(queueUrl, new SqsOutgoingMessage("first"), CancellationToken.None);
        var accepted = batcher.SendAsync(queueUrl, new SqsOutgoingMessage("accepted"), CancellationToken.None);
        var failed = batcher.SendAsync(queueUrl, new SqsOutgoingMessage("failed"), CancellationToken.None);
        var unanswered = batcher.SendAsync(queueUrl, new SqsOutgoingMessage("unanswered"), CancellationToken.None);
        releaseFirst.TrySetResult();

        Assert.Equal("m-first", await first);
        Assert.Equal("m-accepted", await accepted);
        var fault = await Assert.ThrowsAsync<AmazonSQSException>(() => failed);
        Assert.Equal(SqsErrorKind.Unavailable, SqsErrors.Classify(fault));
        Assert.Equal("InternalError", fault.ErrorCode);
        Assert.Equal("try again", fault.Message);
        Assert.Equal(ErrorType.Receiver, fault.ErrorType);
        Assert.Equal(HttpStatusCode.OK, fault.StatusCode);
        var missing = await Assert.ThrowsAsync<AmazonSQSException>(() => unanswered);
        Assert.Equal("MissingBatchEntry", missing.ErrorCode);
        Assert.Equal(0, batcher.QueuesTracked);
    }

    private static SqsOutgoingMessage Numbered(int i) => new(
        $"body-{i}",
        Attributes: new Dictionary<string, MessageAttributeValue>
        {
            ["index"] = SqsOutgoingMessage.Number(i),
            ["tag"] = SqsOutgoingMessage.Text($"tag-{i}"),
        });

    /// <summary>100 bytes as SQS counts them: a 60-byte body of 31 characters and a 40-byte attribute.</summary>
    private static SqsOutgoingMessage HundredBytes(int i) => new(
        $"{i:D2}" + new string('é', 29),
        Attributes: new Dictionary<string, MessageAttributeValue> { ["k"] = SqsOutgoingMessage.Text(new string('v', 33)) });

    private static string Describe(IReadOnlyDictionary<string, MessageAttributeValue> attributes) =>
        string.Join(";", attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value.DataType}:{a.Value.StringValue}"));

    private async Task<string> NewQueueAsync(string purpose) => (await _client.CreateQueueAsync(SqsEmulator.UniqueQueueName(purpose))).QueueUrl;

    /// <summary>Receives until <paramref name="expected"/> messages came back, then checks nothing more is there.</summary>
    private async Task<List<Message>> ReceiveAllAsync(string url, int expected)
    {
        var received = new List<Message>();
        for (var emptyRounds = 0; received.Count < expected && emptyRounds < 3;)
        {
            // Hidden for longer than the test runs, so a message received twice would be a message sent twice.
            var batch = (await _client.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = url,
                MaxNumberOfMessages = 10,
                WaitTimeSeconds = 1,
                VisibilityTimeout = 300,
                MessageAttributeNames = [.. AllAttributes],
            })).Messages ?? [];
            emptyRounds = batch.Count == 0 ? emptyRounds + 1 : 0;
            received.AddRange(batch);
        }

        Assert.Equal(expected, received.Count);
        Assert.Empty((await _client.ReceiveMessageAsync(new ReceiveMessageRequest { QueueUrl = url, MaxNumberOfMessages = 10, WaitTimeSeconds = 0 })).Messages ?? []);
        return received;
    }

    private sealed record RecordedBatch(int Entries, long PayloadBytes);

    /// <summary>
    /// Sits between the SDK and the wire: records each SendMessageBatch call (its entry count, and its payload as
    /// SQS counts it, worked out here independently of the batcher) and, while held, keeps calls from leaving.
    /// </summary>
    private sealed class BatchRecorder : DelegatingHandler
    {
        private readonly ConcurrentQueue<RecordedBatch> _batches = new();
        private volatile TaskCompletionSource _gate = Open();

        public IReadOnlyList<RecordedBatch> Batches => [.. _batches];

        public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Headers.TryGetValues("X-Amz-Target", out var targets)
                && targets.Single().EndsWith("SendMessageBatch", StringComparison.Ordinal))
            {
                _batches.Enqueue(Measure(await request.Content!.ReadAsByteArrayAsync(cancellationToken)));
                await _gate.Task.WaitAsync(cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }

        private static TaskCompletionSource Open()
        {
            var open = new TaskCompletionSource();
            open.SetResult();
            return open;
        }

        private static RecordedBatch Measure(byte[] body)
        {
            using var json = JsonDocument.Parse(body);
            var entries = json.RootElement.GetProperty("Entries");
            long bytes = 0;
            foreach (var entry in entries.EnumerateArray())
            {
                bytes += Encoding.UTF8.GetByteCount(entry.GetProperty("MessageBody").GetString()!);
                if (entry.TryGetProperty("MessageAttributes", out var attributes) && attributes.ValueKind == JsonValueKind.Object)
                {
                    foreach (var attribute in attributes.EnumerateObject())
                    {
                        bytes += Encoding.UTF8.GetByteCount(attribute.Name);
                        bytes += Encoding.UTF8.GetByteCount(attribute.Value.GetProperty("DataType").GetString()!);
                        if (attribute.Value.TryGetProperty("StringValue", out var text) && text.ValueKind == JsonValueKind.String)
                        {
                            bytes += Encoding.UTF8.GetByteCount(text.GetString()!);
                        }

                        if (attribute.Value.TryGetProperty("BinaryValue", out var binary) && binary.ValueKind == JsonValueKind.String)
                        {
                            bytes += binary.GetBytesFromBase64().Length;
                        }
                    }
                }
            }

            return new RecordedBatch(entries.GetArrayLength(), bytes);
        }
    }
}
