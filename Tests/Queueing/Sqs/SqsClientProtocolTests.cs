using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// What the client puts on the wire and how it retries, against a loopback server each test scripts; the backoff
/// delays run through a clock that records them and fires at once.
/// </summary>
public sealed partial class SqsClientProtocolTests : IAsyncLifetime
{
    private const string QueueUrl = "http://sqs.us-east-1.localhost:1/000000000000/q";
    private const string SentOk = """{"MessageId":"m-1","MD5OfMessageBody":"abc"}""";

    private readonly InstantTimeProvider _time = new();
    private ScriptedSqs _server = null!;
    private SqsClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await ScriptedSqs.StartAsync();
        _client = SqsClient.Create(new SqsOptions { ServiceUrl = _server.BaseAddress.ToString() }, new BasicAWSCredentials("test", "test"), _time);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task EveryRequest_IsASignedJsonPostToTheEndpointNamingItsAction_WithTheQueueUrlInTheBody()
    {
        _server.Reply = _ => (200, SentOk);

        var sent = await _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi"));

        Assert.Equal("m-1", sent.MessageId);
        var request = Assert.Single(_server.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/", request.Path);
        Assert.Equal("AmazonSQS.SendMessage", request.Target);
        Assert.Equal("application/x-amz-json-1.0", request.ContentType);
        Assert.Matches(@"^\d{8}T\d{6}Z$", request.AmzDate);
        var date = request.AmzDate![..8];
        var authorization = AuthorizationPattern().Match(request.Authorization ?? "");
        Assert.True(authorization.Success, $"Authorization was: {request.Authorization}");
        Assert.Equal($"test/{date}/us-east-1/sqs/aws4_request", authorization.Groups["credential"].Value);
        Assert.Contains("x-amz-date", authorization.Groups["signed"].Value.Split(';'));
        Assert.Contains("host", authorization.Groups["signed"].Value.Split(';'));

        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal(QueueUrl, body.RootElement.GetProperty("QueueUrl").GetString());
        Assert.Equal("hi", body.RootElement.GetProperty("MessageBody").GetString());
        Assert.False(body.RootElement.TryGetProperty("DelaySeconds", out _), "unset options are left out of the body");
    }

    [Fact]
    public async Task ReceiveMessage_SendsItsOptionsByTheirAwsNames()
    {
        _server.Reply = _ => (200, """{"Messages":[{"MessageId":"m","ReceiptHandle":"r","Body":"b","MD5OfBody":"x","Attributes":{"ApproximateReceiveCount":"3"}}]}""");

        var received = await _client.ReceiveMessagesAsync(QueueUrl, new SqsReceiveRequest
        {
            MaxNumberOfMessages = 7,
            WaitTime = TimeSpan.FromSeconds(2),
            VisibilityTimeout = TimeSpan.FromMilliseconds(1500),
            AttributeNames = ["ApproximateReceiveCount"],
            MessageAttributeNames = ["All"],
        });

        Assert.Equal(3, Assert.Single(received).ReceiveCount);
        using var body = JsonDocument.Parse(Assert.Single(_server.Requests).Body);
        var root = body.RootElement;
        Assert.Equal(7, root.GetProperty("MaxNumberOfMessages").GetInt32());
        Assert.Equal(2, root.GetProperty("WaitTimeSeconds").GetInt32());
        Assert.Equal(2, root.GetProperty("VisibilityTimeout").GetInt32());
        Assert.Equal("ApproximateReceiveCount", root.GetProperty("MessageSystemAttributeNames")[0].GetString());
        Assert.Equal("All", root.GetProperty("MessageAttributeNames")[0].GetString());
    }

    [Fact]
    public async Task Throttling_IsRetriedWithBackoff_UntilItSucceeds()
    {
        _server.Reply = n => n <= 2
            ? (400, """{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}""")
            : (200, SentOk);

        var sent = await _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi"));

        Assert.Equal("m-1", sent.MessageId);
        Assert.Equal(3, _server.Requests.Count);
        Assert.Equal(2, _time.Delays.Count);
        Assert.All(_time.Delays, d => Assert.InRange(d, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task InvalidParameterValue_IsNotRetried_AndIsAnInvalidRequest()
    {
        _server.Reply = _ => (400, """{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"bad value"}""");

        var error = await Assert.ThrowsAsync<SqsException>(() => _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi")));

        Assert.Equal(SqsErrorKind.InvalidRequest, error.Kind);
        Assert.Equal("com.amazonaws.sqs#InvalidParameterValue", error.ErrorCode);
        Assert.Equal("bad value", error.ErrorMessage);
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Single(_server.Requests);
        Assert.Empty(_time.Delays);
    }

    [Fact]
    public async Task ServerErrors_AreRetried_AndAFourthAttemptThatSucceedsWins()
    {
        _server.Reply = n => n <= 3 ? (500, """{"__type":"InternalError","message":"boom"}""") : (200, SentOk);

        var sent = await _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi"));

        Assert.Equal("m-1", sent.MessageId);
        Assert.Equal(4, _server.Requests.Count);
    }

    [Fact]
    public async Task PersistentServerErrors_EndInUnavailable_AfterTheBoundedAttempts()
    {
        _server.Reply = _ => (503, "<html>Service Unavailable</html>");

        var error = await Assert.ThrowsAsync<SqsException>(() => _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi")));

        Assert.Equal(SqsErrorKind.Unavailable, error.Kind);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.StatusCode);
        Assert.Equal(4, _server.Requests.Count);
        Assert.Equal(3, _time.Delays.Count);
        Assert.All(_time.Delays, d => Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromSeconds(2)));
        Assert.True(_time.Delays[2] >= TimeSpan.FromMilliseconds(200), "the backoff grows: the third wait is at least half of 400 ms");
    }

    [Fact]
    public async Task PersistentThrottling_EndsInThrottled()
    {
        _server.Reply = _ => (400, """{"__type":"AWS.SimpleQueueService.RequestThrottled","message":"slow down"}""");

        var error = await Assert.ThrowsAsync<SqsException>(() => _client.SendMessageAsync(QueueUrl, new SqsOutgoingMessage("hi")));

        Assert.Equal(SqsErrorKind.Throttled, error.Kind);
        Assert.Equal(4, _server.Requests.Count);
    }

    [Fact]
    public async Task AnUnreachableEndpoint_EndsInUnavailable_AfterTheBoundedAttempts()
    {
        var port = _server.BaseAddress.Port;
        await _server.DisposeAsync();
        _server = await ScriptedSqs.StartAsync();
        using var client = SqsClient.Create(new SqsOptions { ServiceUrl = $"http://127.0.0.1:{port}/" }, new BasicAWSCredentials("test", "test"), _time);

        var error = await Assert.ThrowsAsync<SqsException>(() => client.DeleteQueueAsync(QueueUrl));

        Assert.Equal(SqsErrorKind.Unavailable, error.Kind);
        Assert.Null(error.StatusCode);
        Assert.Equal(3, _time.Delays.Count);
    }

    [Theory]
    [InlineData("com.amazonaws.sqs#QueueDoesNotExist", SqsErrorKind.QueueDoesNotExist)]
    [InlineData("AWS.SimpleQueueService.NonExistentQueue", SqsErrorKind.QueueDoesNotExist)]
    [InlineData("com.amazonaws.sqs#OverLimit", SqsErrorKind.OverLimit)]
    [InlineData("OverLimit", SqsErrorKind.OverLimit)]
    [InlineData("com.amazonaws.sqs#ReceiptHandleIsInvalid", SqsErrorKind.InvalidRequest)]
    [InlineData("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", SqsErrorKind.InvalidRequest)]
    [InlineData("com.amazon.coral.service#InvalidClientTokenId", SqsErrorKind.Other)]
    public async Task ErrorCodes_InEitherSpelling_MapToTheirKind(string code, SqsErrorKind kind)
    {
        _server.Reply = _ => (400, $$"""{"__type":"{{code}}","Message":"described"}""");

        var error = await Assert.ThrowsAsync<SqsException>(() => _client.GetQueueUrlAsync("q"));

        Assert.Equal(kind, error.Kind);
        Assert.Equal(code, error.ErrorCode);
        Assert.Equal("described", error.ErrorMessage);
        Assert.Single(_server.Requests);
    }

    [Fact]
    public async Task SendMessageBatch_ReturnsPartialFailuresAsValues()
    {
        _server.Reply = _ => (200, """{"Successful":[{"Id":"a","MessageId":"m-a","MD5OfMessageBody":"x"}],"Failed":[{"Id":"b","SenderFault":true,"Code":"InvalidMessageContents","Message":"bad char"}]}""");

        var result = await _client.SendMessageBatchAsync(QueueUrl, [new SqsSendEntry("a", new SqsOutgoingMessage("1")), new SqsSendEntry("b", new SqsOutgoingMessage("2"))]);

        Assert.Equal(new SqsSentEntry("a", "m-a"), Assert.Single(result.Successful));
        Assert.Equal(new SqsBatchFailure("b", "InvalidMessageContents", "bad char", true), Assert.Single(result.Failed));
        Assert.False(result.AllSucceeded);
    }

    [Fact]
    public void AnHttpClientWhoseTimeoutIsShorterThanALongPoll_IsRefused()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        Assert.Throws<ArgumentException>(() => new SqsClient(http, new Uri("http://127.0.0.1:1/")));
    }

    [GeneratedRegex(@"^AWS4-HMAC-SHA256 Credential=(?<credential>[^,]+), SignedHeaders=(?<signed>[^,]+), Signature=[0-9a-f]{64}$")]
    private static partial Regex AuthorizationPattern();

    private sealed record RecordedRequest(string Method, string Path, string? Target, string? ContentType, string? AmzDate, string? Authorization, string Body);

    /// <summary>A loopback HTTP server that answers the n-th request (from 1) as <see cref="Reply"/> says, recording each.</summary>
    private sealed class ScriptedSqs : IAsyncDisposable
    {
        private WebApplication _app = null!;
        private readonly ConcurrentQueue<RecordedRequest> _requests = new();
        private int _count;

        public Func<int, (int Status, string Body)> Reply { get; set; } = _ => (200, "{}");

        public Uri BaseAddress { get; private set; } = null!;

        public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

        public static async Task<ScriptedSqs> StartAsync()
        {
            var server = new ScriptedSqs();
            (server._app, server.BaseAddress) = await LoopbackServer.StartAsync(server.HandleAsync);
            return server;
        }

        private async Task HandleAsync(HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var headers = context.Request.Headers;
            _requests.Enqueue(new RecordedRequest(
                context.Request.Method,
                context.Request.Path.Value ?? "",
                headers["X-Amz-Target"].ToString(),
                context.Request.ContentType,
                headers["X-Amz-Date"].ToString(),
                headers.Authorization.ToString(),
                body));
            var (status, reply) = Reply(Interlocked.Increment(ref _count));
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/x-amz-json-1.0";
            await context.Response.WriteAsync(reply);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>Real time, except that every timer fires at once and its delay is recorded: the backoff runs in microseconds.</summary>
    private sealed class InstantTimeProvider : TimeProvider
    {
        private readonly ConcurrentQueue<TimeSpan> _delays = new();

        public IReadOnlyList<TimeSpan> Delays => [.. _delays];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _delays.Enqueue(dueTime);
            ThreadPool.QueueUserWorkItem(_ => callback(state));
            return new NoTimer();
        }

        private sealed class NoTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
