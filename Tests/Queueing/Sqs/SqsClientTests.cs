using System.Diagnostics;
using Amazon.Runtime;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>The SQS client against a real SQS-compatible server (fauxqs); every test makes its own queues.</summary>
public sealed class SqsClientTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>, IDisposable
{
    private static readonly string[] ReceiveCount = ["ApproximateReceiveCount"];

    private readonly SqsClient _client = SqsClient.Create(
        new SqsOptions { ServiceUrl = emulator.Endpoint.ToString() },
        new BasicAWSCredentials("test", "test"));

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task QueueLifecycle_CreateGetUrlAttributesSetAndDelete_AllBehave()
    {
        var name = SqsEmulator.UniqueQueueName("life");
        var url = await _client.CreateQueueAsync(name, new Dictionary<string, string> { ["VisibilityTimeout"] = "45" });

        Assert.Equal(url, await _client.GetQueueUrlAsync(name));
        var attributes = await _client.GetQueueAttributesAsync(url);
        Assert.Equal("45", attributes["VisibilityTimeout"]);
        Assert.Contains("QueueArn", attributes.Keys);

        await _client.SetQueueAttributesAsync(url, new Dictionary<string, string> { ["VisibilityTimeout"] = "90", ["DelaySeconds"] = "2" });
        var changed = await _client.GetQueueAttributesAsync(url, ["VisibilityTimeout", "DelaySeconds"]);
        Assert.Equal("90", changed["VisibilityTimeout"]);
        Assert.Equal("2", changed["DelaySeconds"]);

        await _client.DeleteQueueAsync(url);
        var gone = await Assert.ThrowsAsync<SqsException>(() => _client.GetQueueUrlAsync(name));
        Assert.Equal(SqsErrorKind.QueueDoesNotExist, gone.Kind);
    }

    [Fact]
    public async Task CreateQueue_WhenItAlreadyExistsWithTheSameAttributes_ReturnsTheSameUrl()
    {
        var name = SqsEmulator.UniqueQueueName("again");
        var first = await _client.CreateQueueAsync(name);
        Assert.Equal(first, await _client.CreateQueueAsync(name));
    }

    [Fact]
    public async Task SendThenReceive_ReturnsBodyMessageIdAndReceiveCountOne()
    {
        var url = await NewQueueAsync("send");
        var sent = await _client.SendMessageAsync(url, new SqsOutgoingMessage("{\"hello\":\"world\"}"));

        var received = Assert.Single(await ReceiveAsync(url));
        Assert.Equal(sent.MessageId, received.MessageId);
        Assert.Equal("{\"hello\":\"world\"}", received.Body);
        Assert.Equal(1, received.ReceiveCount);
        Assert.False(string.IsNullOrEmpty(received.ReceiptHandle));
        Assert.Equal(sent.Md5OfBody, received.Md5OfBody);
    }

    [Fact]
    public async Task ReceivedMessage_StaysInvisibleUntilItsVisibilityTimeoutPasses_ThenComesBackWithReceiveCountTwo()
    {
        var url = await NewQueueAsync("vis");
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("once"));
        var first = Assert.Single(await ReceiveAsync(url, visibility: TimeSpan.FromSeconds(1)));

        Assert.Empty(await ReceiveAsync(url));

        await Task.Delay(TimeSpan.FromMilliseconds(1300));
        var again = Assert.Single(await ReceiveAsync(url, wait: TimeSpan.FromSeconds(2)));
        Assert.Equal(first.MessageId, again.MessageId);
        Assert.Equal(2, again.ReceiveCount);
        Assert.NotEqual(first.ReceiptHandle, again.ReceiptHandle);
    }

    [Fact]
    public async Task ChangeMessageVisibilityToZero_MakesTheMessageVisibleAtOnce()
    {
        var url = await NewQueueAsync("zero");
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("back"));
        var first = Assert.Single(await ReceiveAsync(url, visibility: TimeSpan.FromMinutes(5)));
        Assert.Empty(await ReceiveAsync(url));

        await _client.ChangeMessageVisibilityAsync(url, first.ReceiptHandle, TimeSpan.Zero);

        var again = Assert.Single(await ReceiveAsync(url));
        Assert.Equal(first.MessageId, again.MessageId);
        Assert.Equal(2, again.ReceiveCount);
    }

    [Fact]
    public async Task ChangeMessageVisibilityBatch_ReportsEachEntry_AndZeroMakesMessagesVisible()
    {
        var url = await NewQueueAsync("visb");
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("a"));
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("b"));
        var received = await ReceiveAsync(url, max: 10, visibility: TimeSpan.FromMinutes(5));
        Assert.Equal(2, received.Count);

        var result = await _client.ChangeMessageVisibilityBatchAsync(url, [.. received.Select((m, i) => new SqsVisibilityEntry($"e{i}", m.ReceiptHandle, TimeSpan.Zero))]);

        Assert.True(result.AllSucceeded);
        Assert.Equal(["e0", "e1"], result.Successful.Order());
        Assert.Equal(2, (await ReceiveAsync(url, max: 10)).Count);
    }

    [Fact]
    public async Task DeleteMessage_RemovesItForGood()
    {
        var url = await NewQueueAsync("del");
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("gone"));
        var message = Assert.Single(await ReceiveAsync(url, visibility: TimeSpan.FromSeconds(1)));

        await _client.DeleteMessageAsync(url, message.ReceiptHandle);

        await Task.Delay(TimeSpan.FromMilliseconds(1300));
        Assert.Empty(await ReceiveAsync(url));
        Assert.Equal("0", (await _client.GetQueueAttributesAsync(url, ["ApproximateNumberOfMessagesNotVisible"]))["ApproximateNumberOfMessagesNotVisible"]);
    }

    [Fact]
    public async Task DeleteMessageBatch_DeletesEveryEntry()
    {
        var url = await NewQueueAsync("delb");
        for (var i = 0; i < 3; i++)
        {
            await _client.SendMessageAsync(url, new SqsOutgoingMessage($"m{i}"));
        }

        var received = await ReceiveAsync(url, max: 10, visibility: TimeSpan.FromSeconds(1));
        Assert.Equal(3, received.Count);
        List<SqsReceiptEntry> entries = [.. received.Select((m, i) => new SqsReceiptEntry($"d{i}", m.ReceiptHandle))];

        // fauxqs accepts any receipt handle, so partial failures are covered against the scripted server instead.
        var result = await _client.DeleteMessageBatchAsync(url, entries);

        Assert.True(result.AllSucceeded);
        Assert.Equal(["d0", "d1", "d2"], result.Successful.Order());
        await Task.Delay(TimeSpan.FromMilliseconds(1300));
        Assert.Empty(await ReceiveAsync(url, max: 10));
    }

    [Fact]
    public async Task SendMessageBatchOfTen_ReturnsEveryEntryIdWithItsMessageId_AndReceiveTakesUpToTen()
    {
        var url = await NewQueueAsync("batch");
        List<SqsSendEntry> entries = [.. Enumerable.Range(0, 10).Select(i => new SqsSendEntry($"entry-{i}", new SqsOutgoingMessage($"body-{i}")))];

        var result = await _client.SendMessageBatchAsync(url, entries);

        Assert.True(result.AllSucceeded);
        Assert.Equal(entries.Select(e => e.Id).Order(), result.Successful.Select(s => s.Id).Order());
        Assert.Equal(10, result.Successful.Select(s => s.MessageId).Distinct().Count());

        var bodies = new List<string>();
        for (var round = 0; round < 10 && bodies.Count < 10; round++)
        {
            var batch = await ReceiveAsync(url, max: 10, visibility: TimeSpan.FromMinutes(5));
            Assert.InRange(batch.Count, 0, 10);
            bodies.AddRange(batch.Select(m => m.Body));
        }

        Assert.Equal(entries.Select(e => e.Message.Body).Order(), bodies.Order());
    }

    [Fact]
    public async Task SendMessageBatch_WithRepeatedEntryIds_IsAnInvalidRequest()
    {
        var url = await NewQueueAsync("dup");
        var error = await Assert.ThrowsAsync<SqsException>(() => _client.SendMessageBatchAsync(
            url, [new SqsSendEntry("same", new SqsOutgoingMessage("a")), new SqsSendEntry("same", new SqsOutgoingMessage("b"))]));

        Assert.Equal(SqsErrorKind.InvalidRequest, error.Kind);
    }

    [Fact]
    public async Task LongPollOnEmptyQueue_WaitsAboutTheWaitTime_AndReturnsNothing()
    {
        var url = await NewQueueAsync("empty");
        var clock = Stopwatch.StartNew();

        var received = await ReceiveAsync(url, wait: TimeSpan.FromSeconds(1));

        Assert.Empty(received);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(800), $"returned after {clock.Elapsed}");
    }

    [Fact]
    public async Task LongPoll_ReturnsPromptly_WhenAMessageArrivesDuringTheWait()
    {
        var url = await NewQueueAsync("wake");
        var clock = Stopwatch.StartNew();
        var receive = ReceiveAsync(url, wait: TimeSpan.FromSeconds(10));

        await Task.Delay(TimeSpan.FromMilliseconds(300));
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("wake up"));

        var received = Assert.Single(await receive);
        Assert.Equal("wake up", received.Body);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"returned after {clock.Elapsed}");
    }

    [Fact]
    public async Task DelayedMessage_IsHiddenUntilItsDelayPasses()
    {
        var url = await NewQueueAsync("delay");
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("later", Delay: TimeSpan.FromSeconds(1)));

        Assert.Empty(await ReceiveAsync(url));
        Assert.Single(await ReceiveAsync(url, wait: TimeSpan.FromSeconds(3)));
    }

    [Fact]
    public async Task MessageAttributes_RoundTrip()
    {
        var url = await NewQueueAsync("attrs");
        var attributes = new Dictionary<string, SqsMessageAttribute>
        {
            ["group"] = SqsMessageAttribute.String("billing"),
            ["attempt"] = SqsMessageAttribute.Number("3"),
            ["blob"] = SqsMessageAttribute.Binary([1, 2, 3, 255]),
            ["typed"] = new("String.json", "{\"a\":1}"),
        };
        await _client.SendMessageAsync(url, new SqsOutgoingMessage("with attributes", Attributes: attributes));

        var message = Assert.Single(await _client.ReceiveMessagesAsync(url, new SqsReceiveRequest { MessageAttributeNames = ["All"] }));

        Assert.Equal(4, message.MessageAttributes.Count);
        Assert.Equal(SqsMessageAttribute.String("billing"), message.MessageAttributes["group"]);
        Assert.Equal(SqsMessageAttribute.Number("3"), message.MessageAttributes["attempt"]);
        Assert.Equal("Binary", message.MessageAttributes["blob"].DataType);
        Assert.Equal(new byte[] { 1, 2, 3, 255 }, message.MessageAttributes["blob"].BinaryValue);
        Assert.Equal(new SqsMessageAttribute("String.json", "{\"a\":1}"), message.MessageAttributes["typed"]);
    }

    [Fact]
    public async Task OperationsOnADeletedQueue_ThrowQueueDoesNotExist()
    {
        var url = await NewQueueAsync("deleted");
        await _client.DeleteQueueAsync(url);

        foreach (var call in new Func<Task>[]
        {
            () => _client.SendMessageAsync(url, new SqsOutgoingMessage("x")),
            () => _client.ReceiveMessagesAsync(url, new SqsReceiveRequest()),
            () => _client.GetQueueAttributesAsync(url),
            () => _client.GetQueueUrlAsync(SqsEmulator.UniqueQueueName("never")),
        })
        {
            var error = await Assert.ThrowsAsync<SqsException>(call);
            Assert.Equal(SqsErrorKind.QueueDoesNotExist, error.Kind);
            Assert.False(string.IsNullOrEmpty(error.ErrorCode));
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, error.StatusCode);
        }
    }

    private async Task<string> NewQueueAsync(string purpose) => await _client.CreateQueueAsync(SqsEmulator.UniqueQueueName(purpose));

    private Task<IReadOnlyList<SqsMessage>> ReceiveAsync(string url, int max = 1, TimeSpan? wait = null, TimeSpan? visibility = null) =>
        _client.ReceiveMessagesAsync(url, new SqsReceiveRequest
        {
            MaxNumberOfMessages = max,
            WaitTime = wait ?? TimeSpan.Zero,
            VisibilityTimeout = visibility,
            AttributeNames = ReceiveCount,
        });
}
